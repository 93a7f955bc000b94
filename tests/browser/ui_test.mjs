// Browser test of the web UI: Debian's Chromium driven by playwright-core.
//   node tests/browser/ui_test.mjs BUILD_DIR
// Indexes a generated folder with the test embedder, starts `filesearch serve` on a free port
// (127.0.0.1 only), then types a query, pages, uploads an image, finds similar images, previews a
// document, and checks that --no-vector-search hides every vector feature. Screenshots go to
// BUILD_DIR/test-artifacts/. Exits 77 (skipped) when Chromium or playwright-core is missing.
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

const SKIP = 77;
const buildDir = path.resolve(process.argv[2] || 'build');
const sourceDir = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const binary = path.join(buildDir, 'filesearch');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = path.join(buildDir, 'test-artifacts');

if (!fs.existsSync(chromiumPath)) {
  console.log(`SKIP: ${chromiumPath} not found (run scripts/setup to install Debian's chromium)`);
  process.exit(SKIP);
}
let chromium;
try {
  const require = createRequire(path.join(sourceDir, 'tests/node/package.json'));
  ({ chromium } = require('playwright-core'));
} catch (e) {
  console.log('SKIP: playwright-core is not installed (run scripts/node-deps)');
  process.exit(SKIP);
}
if (!fs.existsSync(binary)) {
  console.error(`FAIL: ${binary} not built`);
  process.exit(1);
}

// --- a small PNG encoder, so the fixture images are real and render in the browser ---
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function png(width, height, pixel) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0;
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(x, y);
      const o = y * (width * 3 + 1) + 1 + x * 3;
      raw[o] = r; raw[o + 1] = g; raw[o + 2] = b;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// --- fixtures ---
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fs-ui-'));
const share = path.join(tmp, 'share');
const dataDir = path.join(tmp, 'data');
fs.mkdirSync(path.join(share, 'reports'), { recursive: true });
fs.mkdirSync(path.join(share, 'photos'), { recursive: true });
for (let i = 0; i < 30; i++) {
  fs.writeFileSync(path.join(share, 'reports', `report-${String(i).padStart(2, '0')}.txt`),
    `Quarterly report ${i}: revenue, costs and the outlook for next quarter.`);
}
const images = {
  'sunset.png': (x, y) => [250 - y, 120 + (x % 60), 60 + y / 2],
  'forest.png': (x, y) => [30 + (x * y) % 40, 120 + (y % 90), 40],
  'ocean.png': (x, y) => [20, 90 + (x % 50), 180 + (y % 60)],
  'stripes.png': (x) => ((x >> 4) & 1 ? [230, 230, 230] : [40, 40, 90]),
  'checker.png': (x, y) => (((x >> 4) ^ (y >> 4)) & 1 ? [200, 60, 60] : [250, 220, 120]),
  'dunes.png': (x, y) => [210 - (y % 30), 170 - (x % 40), 110],
};
for (const [name, fn] of Object.entries(images)) fs.writeFileSync(path.join(share, 'photos', name), png(160, 120, fn));
execFileSync(binary, ['--data-dir', dataDir, '--no-progress', 'index', share, '--test-embedder'], { stdio: 'inherit' });

const servers = [];
function serve(extra) {
  return new Promise((resolve, reject) => {
    const p = spawn(binary, ['--data-dir', dataDir, '--no-progress', 'serve', '--host', '127.0.0.1', '--port', '0', ...extra],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
    servers.push(p);
    let log = '';
    p.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m) resolve(`http://127.0.0.1:${m[1]}`);
    });
    p.on('exit', (code) => reject(new Error(`server exited with ${code}: ${log}`)));
    setTimeout(() => reject(new Error('server did not start within 20 s: ' + log)), 20000);
  });
}

let failures = 0;
function check(cond, what) {
  if (cond) console.log('ok   ' + what);
  else { console.log('FAIL ' + what); failures++; }
}

fs.mkdirSync(artifacts, { recursive: true });
// A fresh profile each run (playwright passes it as --user-data-dir).
const browser = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(tmp, 'chrome-')), {
  executablePath: chromiumPath,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const base = await serve(['--no-auth', '--test-embedder']);
  const page = await browser.newPage();
  page.on('pageerror', (e) => { console.log('page error: ' + e.message); failures++; });
  await page.goto(base + '/');
  // Keyboard: the query box has focus; type and press Enter.
  await page.click('#filters summary');
  await page.selectOption('#f-limit', '12');
  await page.selectOption('#f-mode', 'text');
  await page.focus('#q');
  await page.keyboard.type('quarterly report');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('#results .card').length > 0);
  check(await page.locator('#results .card').count() === 12, 'keyword search shows a page of 12 results');
  check((await page.textContent('#summary')).includes('of 30'), 'summary counts all 30 matches');
  check(await page.isVisible('#image-zone'), 'image search is offered with a query embedder');
  await page.screenshot({ path: path.join(artifacts, 'ui-keyword.png'), fullPage: true });

  await page.click('#next');
  await page.waitForFunction(() => document.querySelector('#summary').textContent.startsWith('Results 13'));
  check(true, 'next page shows results 13-24');
  await page.click('#prev');
  await page.waitForFunction(() => document.querySelector('#summary').textContent.startsWith('Results 1–'));
  check(await page.isDisabled('#prev'), 'previous page returns to the first page');

  await page.fill('#q', '');
  await page.selectOption('#f-mode', '');
  await page.setInputFiles('#image-input', path.join(share, 'photos', 'ocean.png'));
  await page.waitForFunction(() => document.querySelector('#summary').textContent.includes('like your image'));
  const firstName = await page.textContent('#results .card .name');
  check(firstName === 'ocean.png', `image upload finds the same image first (got ${firstName})`);
  await page.waitForFunction(() => [...document.querySelectorAll('#results .thumb img')].every((i) => i.complete && i.naturalWidth > 0));
  await page.hover('#results .card');
  check(await page.isVisible('#results .card .score'), 'scores show on hover');
  await page.screenshot({ path: path.join(artifacts, 'ui-image-search.png'), fullPage: true });

  await page.click('#results .card .similar');
  await page.waitForFunction(() => document.querySelector('#summary').textContent.includes('similar to'));
  const names = await page.locator('#results .card .name').allTextContents();
  check(names.length === 5 && !names.includes('ocean.png'), `find similar lists the other images, not itself (${names})`);

  await page.click('#results .card .thumb');
  await page.waitForSelector('#preview[open] .preview-image');
  check(await page.isVisible('#preview-meta'), 'preview shows the document');
  await page.screenshot({ path: path.join(artifacts, 'ui-preview.png') });
  await page.keyboard.press('Escape');
  check(!(await page.isVisible('#preview')), 'Escape closes the preview');

  // Without a query embedder: keyword search, and a note saying why image search is off.
  const plain = await serve(['--no-auth']);
  await page.goto(plain + '/');
  await page.waitForSelector('#notice:not([hidden])');
  check((await page.textContent('#notice')).includes('no CLIP model loaded'), 'without a model the UI says why image search is off');
  check(!(await page.isVisible('#image-zone')), 'image upload is hidden without a model');

  // --no-vector-search hides everything vector-related.
  const off = await serve(['--no-auth', '--test-embedder', '--no-vector-search']);
  await page.goto(off + '/');
  await page.fill('#q', 'sunset');
  await page.press('#q', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('#results .card').length > 0);
  check(!(await page.isVisible('#image-zone')), 'vector flag off: no image search');
  await page.click('#filters summary');
  check(!(await page.isVisible('#f-mode')), 'vector flag off: no mode selector');
  check(await page.locator('#results .similar').count() === 0, 'vector flag off: no find-similar buttons');
  check((await page.textContent('#notice')) === 'Image search is turned off by the administrator.',
    'vector flag off: the notice says the administrator turned image search off');
  await page.screenshot({ path: path.join(artifacts, 'ui-no-vector.png'), fullPage: true });

  // An administrator turns image search off at run time: the open page notices at its next search,
  // says why and hides the image controls; turned on again, they come back without a reload.
  const switchable = await serve(['--no-auth', '--admin-without-auth', '--test-embedder']);
  const setVectorSearch = async (body) => {
    const res = await fetch(switchable + '/admin/vector-search', { method: 'POST', body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json' } });
    if (res.status !== 200) throw new Error('POST /admin/vector-search answered ' + res.status + ': ' + await res.text());
  };
  await page.goto(switchable + '/');
  await page.fill('#q', 'sunset');
  await page.press('#q', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('#results .similar').length > 0);
  check(await page.isVisible('#image-zone') && await page.isHidden('#notice'), 'switch on: image search offered, no notice');
  await setVectorSearch({ enabled: false, reason: 'the photo index is being rebuilt' });
  await page.press('#q', 'Enter');
  await page.waitForSelector('#notice:not([hidden])');
  check((await page.textContent('#notice')) === 'Image search is turned off by the administrator: the photo index is being rebuilt',
    'switched off: the notice gives the administrator\'s reason');
  check(!(await page.isVisible('#image-zone')), 'switched off: the image drop zone is hidden');
  await page.waitForFunction(() => document.querySelector('#summary').textContent.includes('(text,'));
  check(await page.locator('#results .card').count() > 0 && await page.locator('#results .similar').count() === 0,
    'switched off: keyword results without find-similar');
  await page.screenshot({ path: path.join(artifacts, 'ui-switched-off.png'), fullPage: true });
  await setVectorSearch({ enabled: true });
  await page.press('#q', 'Enter');
  await page.waitForSelector('#notice', { state: 'hidden' });
  check(await page.isVisible('#image-zone'), 'switched on again: the image drop zone is back without a reload');

  // With auth on, the UI asks for a token and then searches with it.
  const secret = crypto.randomBytes(32).toString('hex');
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const unsigned = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64({ sub: 'ui-test', exp: Math.floor(Date.now() / 1000) + 600 });
  const token = unsigned + '.' + crypto.createHmac('sha256', secret).update(unsigned).digest('base64url');
  const authed = await serve(['--auth-secret', secret, '--test-embedder']);
  await page.goto(authed + '/');
  await page.waitForSelector('#auth:not([hidden])');
  check(true, 'auth on: the UI asks for a token');
  await page.fill('#token', 'not-a-token');
  await page.click('#token-save');
  await page.fill('#q', 'quarterly');
  await page.press('#q', 'Enter');
  await page.waitForSelector('#error:not([hidden])');
  check((await page.textContent('#error')).includes('unauthorized'), 'a bad token shows the server\'s error');
  await page.fill('#token', token);
  await page.click('#token-save');
  await page.press('#q', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('#results .card').length > 0);
  check(await page.isHidden('#error'), 'with a valid token the search works');
} catch (e) {
  console.log('FAIL ' + e.stack);
  failures++;
} finally {
  await browser.close();
  for (const p of servers) p.kill('SIGTERM');
  fs.rmSync(tmp, { recursive: true, force: true });
}
console.log(failures ? `${failures} check(s) failed` : 'all browser checks passed');
process.exit(failures ? 1 : 0);
