// The console's first load in headless Chromium (bench/console.py runs it): per round a fresh
// browser context (empty cache) with a logged-in session cookie opens /#/jobs; the round ends when
// the jobs table shows ROWS rows. Prints one JSON line per round: milliseconds from navigation
// start to the usable table, and the bytes received (encoded, i.e. as sent over the wire).
import { chromium } from "playwright-core";

const url = process.env.DLAB_URL;
const cookie = process.env.DLAB_SESSION_COOKIE; // "dlab_session=..."
const rows = Number(process.env.ROWS ?? 500);
const rounds = Number(process.env.ROUNDS ?? 5);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
for (let r = 0; r < rounds; r++) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const [name, value] = cookie.split("=", 2);
  await context.addCookies([{ name, value, url }]);
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  const finished = new Map();
  const streaming = new Map();
  cdp.on("Network.loadingFinished", (e) => finished.set(e.requestId, e.encodedDataLength));
  cdp.on("Network.dataReceived", (e) =>
    streaming.set(e.requestId, (streaming.get(e.requestId) ?? 0) + e.encodedDataLength));
  const t0 = Date.now();
  await page.goto(`${url}/#/jobs`);
  await page.waitForFunction((n) => document.querySelectorAll("#jobs-table tbody tr").length >= n,
    rows, { timeout: 60_000, polling: "raf" });
  const ms = Date.now() - t0;
  let bytes = 0;
  for (const v of finished.values()) bytes += v;
  for (const [id, v] of streaming) if (!finished.has(id)) bytes += v;
  const nav = await page.evaluate(() => {
    const n = performance.getEntriesByType("navigation")[0];
    return { dom_content_loaded_ms: n.domContentLoadedEventEnd };
  });
  console.log(JSON.stringify({ round: r + 1, ms, bytes, ...nav }));
  await context.close();
}
await browser.close();
