import type { KeeperOptions, TokenKeeper } from './token.js';

/** How long a follower waits for the leader's answer before fetching a token itself. */
export const LEADER_ANSWER_MS: number;

export interface SharedKeeperOptions extends KeeperOptions {
  /** Another tab signed out (signOut()); this keeper is stopped by then. */
  onSignedOut?: () => void;
  /** Channel and lock name prefix. */
  name?: string;
  /** Separates sessions: pass `${tenant}:${userId}`. */
  scope?: string;
  /** Injected for tests; default globalThis.BroadcastChannel. */
  BroadcastChannel?: typeof BroadcastChannel;
  /** Injected for tests; default navigator.locks. */
  locks?: Pick<LockManager, 'request'>;
  answerTimeoutMs?: number;
}

export interface SharedTokenKeeper extends TokenKeeper {
  /** Stop the keeper in every tab of this origin and scope (logout). */
  signOut(): void;
  /** 'alone' when the browser has no BroadcastChannel or Web Locks. */
  role(): 'leader' | 'follower' | 'alone' | 'stopped';
}

/**
 * One token for every tab of the origin: a leader elected with Web Locks calls the BFF and
 * broadcasts tokens; new tabs get the current token without a BFF call. Falls back to
 * createTokenKeeper without BroadcastChannel or navigator.locks.
 */
export function createSharedTokenKeeper(options: SharedKeeperOptions): SharedTokenKeeper;
