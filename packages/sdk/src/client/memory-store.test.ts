import { describeClientStoreSuite } from '../../test/client/store-suite.js';
import { createMemoryClientStore } from './memory-store.js';

describeClientStoreSuite('memory', async ({ staleHoldMs }) => ({
  store: createMemoryClientStore(staleHoldMs === undefined ? {} : { staleHoldMs }),
}));
