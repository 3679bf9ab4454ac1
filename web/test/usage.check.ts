// Compiled by `tsc --noEmit` (CI), never run: the README's page-load snippet, typed through
// the package's own name and its exports map, as an SPA would import it.

import { ApiError, createClient, createSharedTokenKeeper, withToken, type KeeperState, type Me } from '@basiq-bff/client';
import { createTokenKeeper } from '@basiq-bff/client/token';

export async function pageLoad(render: (state: KeeperState) => void, showLogin: () => void): Promise<void> {
  const api = createClient({ origin: 'https://bff.example.com' });
  let me: Me;
  try {
    me = await api.me();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return showLogin();
    throw err;
  }
  const keeper = createSharedTokenKeeper({
    fetchToken: api.clientToken,
    scope: `${me.user.tenant}:${me.user.id}`,
    onChange: render,
    onUnauthenticated: showLogin,
    onSignedOut: showLogin,
  });
  const res = await withToken(keeper, (token) =>
    fetch(`${me.basiq.api_url}/users/${me.user.basiq_user_id}/connections`, {
      headers: { Authorization: `Bearer ${token}` },
    }),
  );
  const body: unknown = await res.json();
  void body;
  const { url } = await api.consent({ action: 'connect', institutionId: 'AU00000' });
  const single = createTokenKeeper({ fetchToken: api.clientToken });
  single.stop();
  keeper.signOut();
  void url;
}
