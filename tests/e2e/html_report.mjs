// Opens an HTML report (`crucible report RUN --html FILE`) in headless
// Chromium as a person would and checks the page's DOM contract
// (report/html.h): no console or page errors, no network request, the
// headline visible, a visible row per agent, a task's diff visible (unfolded
// when folded), and a click on a grid cell that reaches that attempt's
// section. Takes a full-page screenshot.
//
// Usage: node html_report.mjs --npm-dir DIR --chromium PATH --page FILE
//          [--screenshot PNG] [--agents A,B,...] [--agent-for-diff A]
//          [--diff-line TEXT] [--deadline-s N] [--screenshot-height PX]
// (--screenshot-height: only the top PX pixels of the full page, as in
// docs/images/report.png)
// Prints one line per check ("ok ...") and a JSON line of timings
// ({"load_ms", "click_ms", "unfold_ms", "total_ms", "requests"}) on stdout; problems go to stderr and
// make the exit status 1. Exit status 2: the deadline passed.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

function parseArgs(argv) {
  const out = { agents: [], deadlineS: 120 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`option ${key} needs a value`);
    switch (key) {
      case '--npm-dir': out.npmDir = value; break;
      case '--chromium': out.chromium = value; break;
      case '--page': out.page = value; break;
      case '--screenshot': out.screenshot = value; break;
      case '--agents': out.agents = value.split(',').filter((a) => a.length > 0); break;
      case '--agent-for-diff': out.agentForDiff = value; break;
      case '--diff-line': out.diffLine = value; break;
      case '--deadline-s': out.deadlineS = Number(value); break;
      case '--screenshot-height': out.screenshotHeight = Number(value); break;
      default: throw new Error(`unknown option ${key}`);
    }
  }
  for (const need of ['npmDir', 'chromium', 'page']) {
    if (!out[need]) throw new Error(`missing option for ${need}`);
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
// Whatever hangs, the process ends by the deadline (the test kills it later
// still, should this timer itself not fire).
const deadline = setTimeout(() => {
  console.error(`deadline of ${args.deadlineS} s passed`);
  process.exit(2);
}, args.deadlineS * 1000);
deadline.unref();

// A value inside a double-quoted CSS attribute selector.
const attr = (value) => value.replace(/["\\]/g, (c) => `\\${c}`);

const kWaitMs = 20000;  // every single wait of the page
const problems = [];
const problem = (text) => { problems.push(text); console.error(`FAIL ${text}`); };
const ok = (text) => console.log(`ok ${text}`);

if (!fs.existsSync(args.chromium)) {
  console.error(`no Chromium at ${args.chromium} (make deps installs Debian's chromium)`);
  process.exit(1);
}
const require = createRequire(path.join(path.resolve(args.npmDir), 'package.json'));
const { chromium } = require('playwright-core');

const browser = await chromium.launch({
  executablePath: args.chromium,
  headless: true,
  timeout: kWaitMs,
  args: ['--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'],
});
let timings = {};
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  context.setDefaultTimeout(kWaitMs);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') problem(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problem(`page error: ${e.message}`));
  // The page is self-contained: anything but the file itself and data: URLs
  // is a network request, refused and reported.
  const requests = [];
  await context.route('**', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
    problem(`network request: ${url}`);
    return route.abort();
  });
  page.on('request', (r) => {
    requests.push(r.url());
    const url = r.url();
    if (!url.startsWith('file:') && !url.startsWith('data:')) {
      problem(`request other than file: or data: ${url}`);
    }
  });

  const url = pathToFileURL(path.resolve(args.page)).href;
  const started = performance.now();
  await page.goto(url, { waitUntil: 'load', timeout: kWaitMs });
  timings.load_ms = Math.round(performance.now() - started);
  ok(`loaded ${url} in ${timings.load_ms} ms`);

  // The headline sentence.
  const headline = page.locator('#headline');
  if (await headline.count() !== 1) {
    problem(`#headline: ${await headline.count()} elements, want 1`);
  } else if (!(await headline.isVisible())) {
    problem('#headline is not visible');
  } else {
    const text = (await headline.innerText()).trim();
    if (text.length === 0) problem('#headline is empty');
    else ok(`headline: ${text.split('\n')[0]}`);
  }

  // A visible row per agent of the run.
  for (const agent of args.agents) {
    const row = page.locator(`#agents tr[data-agent="${attr(agent)}"]`);
    const n = await row.count();
    if (n !== 1) problem(`#agents row of agent ${agent}: ${n} rows, want 1`);
    else if (!(await row.isVisible())) problem(`#agents row of agent ${agent} is not visible`);
    else ok(`agent row ${agent}`);
  }

  // The grid: a cell of the agent whose diff is checked (the first cell
  // otherwise) is clicked and must bring that attempt's section into view.
  const cells = page.locator('#grid a.cell');
  const cellCount = await cells.count();
  if (cellCount === 0) {
    problem('#grid has no a.cell');
  } else {
    ok(`grid: ${cellCount} cells`);
    let cell = cells.first();
    if (args.agentForDiff) {
      const own = page.locator(`#grid a.cell[data-agent="${attr(args.agentForDiff)}"]`);
      if (await own.count() === 0) problem(`#grid has no cell of agent ${args.agentForDiff}`);
      else cell = own.first();
    }
    const href = await cell.getAttribute('href');
    const match = /^#attempt-(\d+)$/.exec(href ?? '');
    if (!match) {
      problem(`grid cell href ${href}, want #attempt-N`);
    } else {
      const clickStart = performance.now();
      await cell.scrollIntoViewIfNeeded();
      await cell.click();
      const section = page.locator(`section#attempt-${match[1]}`);
      try {
        await page.waitForFunction((h) => location.hash === h, href, { timeout: kWaitMs });
        await section.waitFor({ state: 'visible', timeout: kWaitMs });
        timings.click_ms = Math.round(performance.now() - clickStart);
        const inView = await section.evaluate((el) => {
          const r = el.getBoundingClientRect();
          return r.bottom > 0 && r.top < window.innerHeight;
        });
        if (!inView) problem(`section#attempt-${match[1]} is not in view after the click`);
        else ok(`clicked ${href}: at ${page.url().replace(/^.*#/, '#')}, section in view`);
      } catch (e) {
        problem(`after clicking ${href}: ${e.message.split('\n')[0]}`);
      }
      await checkDiff(page, section, `section#attempt-${match[1]}`);
    }
  }

  if (args.screenshot) {
    const clip = args.screenshotHeight
      ? { x: 0, y: 0, width: await page.evaluate(() => document.documentElement.scrollWidth),
          height: args.screenshotHeight }
      : undefined;
    await page.screenshot({ path: args.screenshot, fullPage: true, clip, timeout: kWaitMs });
    ok(`screenshot ${args.screenshot}`);
  }
  timings.requests = requests.length;
  timings.total_ms = Math.round(performance.now() - started);
} catch (e) {
  problem(`${e.message.split('\n')[0]}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(timings));
process.exit(problems.length === 0 ? 0 : 1);

// The agent's diff and the golden diff of `section`, unfolded when folded
// (a closed <details> or a button that toggles them), visible and, with
// --diff-line, both showing that line.
async function checkDiff(page, section, name) {
  for (const cls of ['.diff-agent', '.diff-golden']) {
    const diff = section.locator(cls).first();
    if (await diff.count() === 0) {
      problem(`${name} has no ${cls}`);
      continue;
    }
    const unfoldStart = performance.now();
    if (!(await diff.isVisible())) {
      // Folded: open the closest closed <details> through its summary, as a
      // person would.
      const summary = section.locator(`details:not([open]):has(${cls}) > summary`).first();
      if (await summary.count() > 0) await summary.click();
    }
    try {
      await diff.waitFor({ state: 'visible', timeout: kWaitMs });
      if (cls === '.diff-agent') timings.unfold_ms = Math.round(performance.now() - unfoldStart);
    } catch {
      problem(`${name} ${cls} is not visible (not even after unfolding)`);
      continue;
    }
    const text = await diff.textContent();
    if (!text || text.trim().length === 0) {
      problem(`${name} ${cls} is empty`);
    } else if (args.diffLine && !text.includes(args.diffLine)) {
      problem(`${name} ${cls} does not show the line ${JSON.stringify(args.diffLine)}`);
    } else {
      ok(`${name} ${cls} visible`);
    }
  }
}
