import { createMemoryStore } from '../../src/stores/memory.js';
import { describeStoreSuite } from './store-suite.js';

describeStoreSuite('memory', async () => {
  const store = createMemoryStore();
  await store.init();
  return { store };
});
