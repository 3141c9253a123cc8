import { describe, expect, it } from 'vitest';
import { launchChromium, requireChromium } from '../support/browser.js';

describe('test support: Chromium', () => {
  it('skips loudly without CI and fails under CI when the binary is missing', () => {
    const missing = '/nonexistent/chromium';
    const warnings: string[] = [];
    const warn = (message: string) => warnings.push(message);
    expect(requireChromium(missing, { CI: '' }, warn)).toBe(false);
    expect(requireChromium(missing, { CI: 'false' }, warn)).toBe(false);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('SKIPPING PAGE TESTS');
    expect(warnings[0]).toContain('apt-get install -y chromium');
    expect(() => requireChromium(missing, { CI: 'true' }, warn)).toThrow(
      'apt-get install -y chromium',
    );
    expect(warnings).toHaveLength(2);
  });

  it.skipIf(!requireChromium())('renders a page in real headless Chromium', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      await page.setContent(
        '<h1 id="t">hello</h1><script>document.getElementById("t").textContent += " from js"</script>',
      );
      expect(await page.textContent('#t')).toBe('hello from js');
    } finally {
      await browser.close();
    }
  });
});
