import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { formatCountdown } from '../ui.js';

describe('formatCountdown', () => {
  const cases = [
    { name: 'an hour', ms: 3_600_000, want: '60:00' },
    { name: 'minutes and seconds', ms: 754_000, want: '12:34' },
    { name: 'partial second rounds up', ms: 59_001, want: '01:00' },
    { name: 'last partial second', ms: 1, want: '00:01' },
    { name: 'zero', ms: 0, want: '00:00' },
    { name: 'expired', ms: -5_000, want: '00:00' },
  ];
  for (const tc of cases) {
    it(tc.name, () => assert.equal(formatCountdown(tc.ms), tc.want));
  }
});
