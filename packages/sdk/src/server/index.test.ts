import { describe, expect, it } from 'vitest';
import * as server from './index.js';

describe('@tollway/sdk/server', () => {
  it('exports exactly its public functions', () => {
    expect(Object.keys(server).sort()).toEqual([
      'clientNetwork',
      'createMasterSecret',
      'createPaywall',
      'createX402Offer',
      'formatProblem',
    ]);
  });
});
