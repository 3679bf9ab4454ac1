// app.js is the entry point: it builds the view (view.js, the only module that touches the
// DOM) and the controller (controller.js, the page's state and decisions), connects them and
// starts the page.

import { createBff } from './client.js';
import { createController } from './controller.js';
import { createView } from './view.js';

const view = createView();
const origin = view.origin();
const controller = createController({
  bff: createBff({ origin }),
  view,
  origin,
  page: {
    get search() {
      return location.search;
    },
    get pathname() {
      return location.pathname;
    },
    // replaceSearch drops what the page has read from the address, without a navigation.
    replaceSearch: (search) => history.replaceState(history.state, '', `${location.pathname}${search}${location.hash}`),
    assign: (url) => location.assign(url),
  },
});
view.bind(controller);
controller.boot().catch(() => {
  view.setStatus('This page failed to start. Please reload it.');
});
