// Browser tests of the web console: Playwright (playwright-core) driving Debian's Chromium,
// headless, against a real dlabd that tests/e2e/test_console.py starts and fills with users.
// Run by that test; alone: DLAB_URL=... (see the environment variables below) node --test.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (tests/e2e/test_console.py sets it)`);
  return v;
};
const URL = env("DLAB_URL");
const MEMBER = { user: env("CONSOLE_MEMBER"), password: env("CONSOLE_MEMBER_PASSWORD") };
const VIEWER = { user: env("CONSOLE_VIEWER"), password: env("CONSOLE_VIEWER_PASSWORD") };
const ADMIN = { user: env("CONSOLE_ADMIN"), password: env("CONSOLE_ADMIN_PASSWORD") };
const SHOTS = env("CONSOLE_SCREENSHOTS");
const JOB_DIR = env("CONSOLE_JOB_DIR");
const TIMEOUT = 30_000;

let browser;
let jobId;
mkdirSync(SHOTS, { recursive: true });

async function newPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  return page;
}

async function login(page, who) {
  await page.goto(URL + "/");
  await page.fill("#user", who.user);
  await page.fill("#password", who.password);
  await page.click("form.login button[type=submit]");
  await page.waitForSelector("header.topbar");
}

async function shot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

// Runs the dlab CLI in the job folder; returns the job id it printed (run) or its output.
function dlab(...args) {
  const out = execFileSync(env("DLAB_CLI"), args, { cwd: JOB_DIR, encoding: "utf8" }).trim();
  return args[0] === "run" ? Number(out.split(/\s+/).pop()) : out;
}

// The job's state as its row in the jobs table shows it.
const rowState = (page, id) => page.locator(`tr[data-job="${id}"] .badge`).textContent();

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
});
after(async () => {
  await browser?.close();
});

test("a wrong password shows an error and no console", async () => {
  const page = await newPage();
  await page.goto(URL + "/");
  await page.fill("#user", MEMBER.user);
  await page.fill("#password", "not-the-password");
  await page.click("form.login button[type=submit]");
  const error = page.locator("form.login .error");
  await error.waitFor();
  assert.match(await error.textContent(), /wrong user name or password/i);
  assert.equal(await page.locator("header.topbar").count(), 0);
  await shot(page, "login-error");
  await page.context().close();
});

let member;
test("a job submitted with the CLI appears and changes state without a reload", async () => {
  member = await newPage();
  await login(member, MEMBER);
  await member.waitForSelector("#jobs-table, .empty");
  await shot(member, "jobs-empty");
  await member.evaluate(() => { window.__notReloaded = true; });
  // A job holding both GPUs first, so that ours waits in the queue until the blocker is cancelled.
  const blocker = dlab("run", "blocker.yaml");
  await member.waitForFunction(
    (id) => document.querySelector(`tr[data-job="${id}"] .badge`)?.textContent === "RUNNING", blocker);
  jobId = dlab("run", "job.yaml");
  const row = member.locator(`tr[data-job="${jobId}"]`);
  await row.waitFor();
  assert.equal(await rowState(member, jobId), "QUEUED");
  assert.match(await row.textContent(), new RegExp(MEMBER.user));
  await shot(member, "jobs");
  dlab("cancel", String(blocker));
  await member.waitForFunction(
    (id) => document.querySelector(`tr[data-job="${id}"] .badge`)?.textContent === "RUNNING", jobId);
  assert.equal(await member.evaluate(() => window.__notReloaded), true, "the page was reloaded");
  assert.equal(await rowState(member, blocker), "CANCELLED");
});

test("the job page shows its log lines and draws its training curve", async () => {
  await member.click(`tr[data-job="${jobId}"] a`);
  await member.waitForSelector(`h1:has-text("Job ${jobId}")`);
  await member.waitForFunction(() => /step 3 loss/.test(document.querySelector("#log-view")?.textContent ?? ""));
  const canvas = member.locator('.chart[data-metric="loss"] canvas');
  await canvas.waitFor();
  // Not blank: pixels of the series' colour (#3b6ef5) are on the canvas, i.e. a line was drawn.
  await member.waitForFunction(() => {
    const c = document.querySelector('.chart[data-metric="loss"] canvas');
    if (!c) return false;
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let line = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] > 200 && Math.abs(d[i] - 59) < 40 && Math.abs(d[i + 1] - 110) < 40 && d[i + 2] > 200) line++;
    }
    return line > 50;
  });
  // Search narrows the log to matching lines.
  await member.fill("#log-search", "step 2 loss");
  const filtered = (await member.locator("#log-view").textContent()).trim().split("\n");
  assert.ok(filtered.length >= 1 && filtered.every((l) => l.includes("step 2 loss")), filtered.join("|"));
  await member.fill("#log-search", "");
  await shot(member, "job");
});

test("a viewer sees the job but no cancel button", async () => {
  const viewer = await newPage();
  await login(viewer, VIEWER);
  await viewer.waitForSelector(`tr[data-job="${jobId}"]`);
  assert.equal(await rowState(viewer, jobId), "RUNNING");
  assert.equal(await viewer.locator('button[data-action="cancel"]').count(), 0);
  await viewer.click(`tr[data-job="${jobId}"] a`);
  await viewer.waitForSelector(`h1:has-text("Job ${jobId}")`);
  await viewer.waitForSelector("#attempts table");
  assert.equal(await viewer.locator("#cancel-job").count(), 0);
  await shot(viewer, "job-as-viewer");
  await viewer.context().close();
});

test("the member cancels the job from the console", async () => {
  member.once("dialog", (d) => d.accept());
  await member.click("#cancel-job");
  await member.waitForFunction(() => document.querySelector(".page-head .badge")?.textContent === "CANCELLED");
  await member.click('a[href="#/jobs"]');
  await member.waitForFunction(
    (id) => document.querySelector(`tr[data-job="${id}"] .badge`)?.textContent === "CANCELLED", jobId);
  assert.equal(await member.locator(`tr[data-job="${jobId}"] button[data-action="resubmit"]`).count(), 1);
  await shot(member, "jobs-after-cancel");
});

test("older jobs than the live page are shown on demand", async () => {
  await member.goto(`${URL}/#/jobs?page_size=1`);  // two jobs exist: one live, one older
  await member.waitForSelector(`tr[data-job="${jobId}"]`);
  assert.equal(await member.locator("#jobs-table tbody tr").count(), 1);
  await member.click("#older-jobs");
  await member.waitForFunction(() => document.querySelectorAll("#jobs-table tbody tr").length === 2);
  // A full page may have more behind it (the API's next_cursor); the next one is empty here.
  await member.click("#older-jobs");
  await member.waitForFunction(() => !document.querySelector("#older-jobs"));
  assert.equal(await member.locator("#jobs-table tbody tr").count(), 2);
});

test("compare, cluster and admin pages render", async () => {
  await member.goto(`${URL}/#/compare?ids=${jobId}&metric=loss`);
  await member.waitForSelector("#compare-chart canvas");
  await shot(member, "compare");
  await member.goto(`${URL}/#/cluster`);
  await member.waitForSelector('#gpus [data-gpu="0"]');
  assert.match(await member.locator('#gpus [data-gpu="0"]').textContent(), /71 %/);
  assert.match(await member.locator('#gpus [data-gpu="1"]').textContent(), /n\/a/);
  await member.waitForSelector("#nodes tr[data-node]");  // GET /api/v1/nodes: the inventory
  assert.match(await member.locator("#nodes").textContent(), /0:H100.*1:H100/);
  await shot(member, "cluster");
  const admin = await newPage();
  await login(admin, ADMIN);
  await admin.goto(`${URL}/#/admin`);
  await admin.waitForSelector("#audit table tbody tr");
  await admin.waitForSelector("#members table");
  assert.match(await admin.locator("#members").textContent(), new RegExp(VIEWER.user));
  // A superadmin sets the quota from the form; a bad value is refused with what to fix.
  await admin.fill('#quota-form input[name="gpus"]', "-1");
  await admin.click('#quota-form button[type="submit"]');
  await admin.waitForSelector(".error");
  assert.match(await admin.locator(".error").textContent(), /gpus: a whole number/);
  await admin.fill('#quota-form input[name="gpus"]', "3");
  await admin.fill('#quota-form input[name="memory"]', "6Gi");
  await admin.click('#quota-form button[type="submit"]');
  await admin.waitForFunction(() => /GPUs\s*0 of 3/.test(document.querySelector("#quota")?.textContent ?? ""));
  assert.match(await admin.locator("#quota").textContent(), /of 6Gi/);
  await shot(admin, "admin");
  await admin.context().close();
  await member.context().close();
});

test("the dark theme follows the system setting, and a phone-sized screen still works", async () => {
  const dark = await newPage({ colorScheme: "dark" });
  await login(dark, MEMBER);
  await dark.goto(`${URL}/#/jobs/${jobId}`);
  await dark.waitForSelector('.chart[data-metric="loss"] canvas');
  const background = await dark.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const [r, g, b] = background.match(/\d+/g).map(Number);
  assert.ok(r + g + b < 150, `a dark background, got ${background}`);
  await shot(dark, "job-dark");
  await dark.context().close();
  const phone = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await login(phone, MEMBER);
  await phone.waitForSelector(`tr[data-job="${jobId}"]`);
  const overflow = await phone.evaluate(() => document.querySelector("main").scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  await shot(phone, "jobs-phone");
  await phone.context().close();
});
