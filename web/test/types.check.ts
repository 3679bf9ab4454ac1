// Compiled by `tsc --noEmit -p web/tsconfig.json` (CI), never run. Each module, as tsc infers
// it from the JavaScript, is given the type its declaration file promises: a declared export
// the code lacks, or one of another shape (arity, parameters, what it returns), fails the check.

import * as apiJS from '../api.js';
import * as tokenJS from '../token.js';
import * as tabsJS from '../tabs.js';
import * as clientJS from '../client.js';
import type * as api from '../types/api.js';
import type * as token from '../types/token.js';
import type * as tabs from '../types/tabs.js';
import type * as client from '../types/client.js';

export const checkApi: typeof api = apiJS;
export const checkToken: typeof token = tokenJS;
export const checkTabs: typeof tabs = tabsJS;
export const checkClient: typeof client = clientJS;
