/**
 * The lab's live dashboard in a real browser: Debian's Chromium driven by playwright-core (never a
 * downloaded browser). It logs in with the one-time link the lab prints, watches a slow `cat`
 * exec appear with its bytes growing, sees the sequence of one exec's hops, switches the kubelet
 * fault drill on (the next exec through kexec is refused) and off (exec works again). The
 * screenshots it takes are the ones in docs/.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startLab, type Lab } from '../lab/lab.js';
import { packageRoot } from '../shared/package-root.js';

const CHROMIUM = '/usr/bin/chromium';
const KEXEC = path.join(packageRoot(), 'bin', 'kexec.js');
const DOCS = path.join(packageRoot(), 'docs');

let dir = '';
let lab: Lab;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dashboard-'));
  lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, log: () => {} });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function kexec(...args: string[]) {
  return spawnSync(process.execPath, [KEXEC, '--kubeconfig', lab.kubeconfigPath, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
}

/** The bytes the apiserver's row shows sent down for the open exec, or -1 without one. */
function apiserverBytesDown(): Promise<number> {
  return page.evaluate(() => {
    const cell = document.querySelector('#sessions tr[data-hop="apiserver"] td[data-bytes-down]');
    return cell ? Number(cell.getAttribute('data-bytes-down')) : -1;
  });
}

test('only the login link or the admin token opens the dashboard, on loopback', async () => {
  const dash = lab.dashboard!;
  expect(new URL(dash.url).hostname).toBe('127.0.0.1');
  expect((await fetch(`${dash.url}api/state`)).status).toBe(401);
  const bearer = await fetch(`${dash.url}api/state`, {
    headers: { Authorization: `Bearer ${lab.adminToken}` },
  });
  expect(bearer.status).toBe(200);
  const link = dash.newLoginLink();
  const first = await fetch(link, { redirect: 'manual' });
  expect(first.status).toBe(303);
  expect(first.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
  expect((await fetch(link, { redirect: 'manual' })).status).toBe(401); // one time only
});

test('a live exec appears with its bytes growing; the fault drill switches exec off and on', async () => {
  await page.goto(lab.dashboard!.newLoginLink());
  await page.waitForSelector('#live.on', { timeout: 20_000 });
  await page.waitForSelector('#pods td.phase-Running', { timeout: 20_000 });

  // A `cat` fed slowly: every chunk goes up through every hop and comes back down.
  const cat = spawn(
    process.execPath,
    [KEXEC, '--kubeconfig', lab.kubeconfigPath, '-i', 'demo', '--', 'cat'],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let echoed = 0;
  cat.stdout.on('data', (c: Buffer) => (echoed += c.length));
  const chunk = Buffer.alloc(8 * 1024, 'kexec-lab ');
  const feeder = setInterval(() => cat.stdin.write(chunk), 100);
  try {
    await page.waitForFunction(
      () => {
        const cell = document.querySelector('#sessions tr[data-hop="apiserver"] td[data-bytes-down]');
        return cell !== null && Number(cell.getAttribute('data-bytes-down')) > 0;
      },
      undefined,
      { timeout: 30_000 },
    );
    const first = await apiserverBytesDown();
    await page.waitForFunction(
      (before) => {
        const cell = document.querySelector('#sessions tr[data-hop="apiserver"] td[data-bytes-down]');
        return cell !== null && Number(cell.getAttribute('data-bytes-down')) >= before + 32 * 1024;
      },
      first,
      { timeout: 30_000 },
    );
    // Both hops list it, with the same Audit-Id.
    const hops = await page.$$eval('#sessions tbody tr', (rows) =>
      rows.map((r) => `${r.getAttribute('data-hop')} ${r.getAttribute('data-audit-id')}`),
    );
    const ids = new Set(hops.map((h) => h.split(' ').pop()));
    expect(hops.some((h) => h.startsWith('apiserver '))).toBe(true);
    expect(hops.some((h) => h.startsWith('kubelet-sim node-1 '))).toBe(true);
    expect(ids.size).toBe(1);
    fs.mkdirSync(DOCS, { recursive: true });
    await page.screenshot({ path: path.join(DOCS, 'dashboard.png'), fullPage: true });
  } finally {
    clearInterval(feeder);
    cat.stdin.end();
  }
  expect(await new Promise((resolve) => cat.once('close', resolve))).toBe(0);
  expect(echoed).toBeGreaterThan(32 * 1024);
  await page.waitForFunction(() => document.querySelectorAll('#sessions tbody tr').length === 0, undefined, {
    timeout: 20_000,
  });

  // The sequence of one exec: every hop in order, from the audit log's 101 to the process's exit.
  const ok = kexec('demo', '--', 'echo', 'sequence');
  expect(ok.stdout).toBe('sequence\n');
  const row = page.locator('#requests tbody tr', { hasText: 'pods/exec' }).first();
  await row.waitFor({ timeout: 20_000 });
  await row.click();
  await page.waitForFunction(
    () => (document.querySelector('#sequence')?.textContent ?? '').includes('ended: 0'),
    undefined,
    { timeout: 20_000 },
  );
  const sequence = await page.locator('#sequence li').allTextContents();
  const order = [
    'ResponseStarted 101',
    'CRI Exec',
    'runtime upgraded',
    'pid',
    'ended: 0',
    'ResponseComplete',
  ];
  const at = order.map((s) => sequence.findIndex((line) => line.includes(s)));
  expect(at.every((i) => i >= 0)).toBe(true);
  expect([...at].sort((a, b) => a - b)).toEqual(at);
  await page.screenshot({ path: path.join(DOCS, 'dashboard-sequence.png'), fullPage: true });
  // The kubelets' SubjectAccessReviews (one whenever the dashboard's own reads of a kubelet find
  // its cached answer expired) are in the audit log, and not in the list they would flood.
  const audit = fs.readFileSync(path.join(lab.dir, 'audit.log'), 'utf8');
  expect(audit).toMatch(
    /"resource":"subjectaccessreviews".*"username":"system:node:node-1"|"username":"system:node:node-1".*"resource":"subjectaccessreviews"/,
  );
  expect(await page.locator('#requests tbody tr', { hasText: 'subjectaccessreviews' }).count()).toBe(0);

  // Fault drill on: the next exec is refused with the apiserver's error.
  await page.selectOption('#fault-mode', 'refuse-400');
  await page.click('#fault-apply');
  await page.waitForSelector('#nodes td[data-fault="refuse-400"]', { timeout: 20_000 });
  const refused = kexec('demo', '--', 'echo', 'hi');
  expect(refused.status).not.toBe(0);
  expect(refused.stderr).toMatch(/upgrade refused by kubelet-sim --fault refuse-400/);
  await page.screenshot({ path: path.join(DOCS, 'dashboard-fault.png'), fullPage: true });

  // And off again: exec works.
  await page.selectOption('#fault-mode', 'none');
  await page.click('#fault-apply');
  await page.waitForSelector('#nodes td[data-fault="none"]', { timeout: 20_000 });
  const again = kexec('demo', '--', 'echo', 'hi');
  expect(again.status).toBe(0);
  expect(again.stdout).toBe('hi\n');
}, 180_000);
