/** The local dataset check, hashing, naming, the resume state, the config file, shell completion. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { COMMANDS } from '../../src/cli';
import { bashCompletion, zshCompletion } from '../../src/commands/completion';
import { configPath, readConfig, resolveSettings, writeConfig } from '../../src/config';
import { DatasetFolderError, scanFolder } from '../../src/dataset/folder';
import { contentDigest, defaultDatasetName, hashFiles } from '../../src/dataset/hash';
import { clearUploadState, loadUploadState, saveUploadState } from '../../src/dataset/state';

let dir: string;
let env: Record<string, string>;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'gpulab-cli-unit-'));
  env = { HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'cfg'), XDG_STATE_HOME: path.join(dir, 'state') };
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function tree(root: string, files: Record<string, string>): string {
  const base = path.join(dir, root);
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(base, p)), { recursive: true });
    writeFileSync(path.join(base, p), content);
  }
  return base;
}

const good = {
  'train/cat/1.png': 'c1',
  'train/cat/2.jpg': 'c2',
  'train/dog/1.png': 'd1',
  'val/cat/1.png': 'c3',
  'val/dog/1.png': 'd2',
};

async function problems(root: string): Promise<string[]> {
  try {
    await scanFolder(root);
  } catch (e) {
    expect(e).toBeInstanceOf(DatasetFolderError);
    return (e as DatasetFolderError).problems;
  }
  throw new Error('expected the folder to be refused');
}

describe('scanFolder', () => {
  it('accepts an ImageFolder and skips (but reports) hidden files, extras and non-images', async () => {
    const root = tree('ok', {
      ...good,
      'README.md': 'hi',
      '.DS_Store': 'x',
      'train/cat/.hidden.png': 'x',
      'train/cat/notes.txt': 'x',
    });
    const s = await scanFolder(root);
    expect(s.files.map((f) => f.path)).toEqual([
      'train/cat/1.png',
      'train/cat/2.jpg',
      'train/dog/1.png',
      'val/cat/1.png',
      'val/dog/1.png',
    ]);
    expect(s.classes).toEqual(['cat', 'dog']);
    expect(s.counts).toEqual({ train: { cat: 2, dog: 1 }, val: { cat: 1, dog: 1 } });
    expect(s.bytes).toBe(10);
    expect(s.skipped.map((x) => x.path).sort()).toEqual(
      ['.DS_Store', 'README.md', 'train/cat/.hidden.png', 'train/cat/notes.txt'].sort(),
    );
  });

  it('names every problem by path: layout, empty files, wrong depth, one class, val lacking a class', async () => {
    expect(await problems(path.join(dir, 'nope'))).toEqual([`${path.join(dir, 'nope')} does not exist`]);
    const root = tree('bad', {
      'train/cat/1.png': 'x',
      'train/cat/empty.png': '',
      'train/cat/deep/2.png': 'x',
      'train/loose.png': 'x',
    });
    const p = await problems(root);
    expect(p).toEqual(
      expect.arrayContaining([
        `${path.join(root, 'train/cat/empty.png')} is empty`,
        `${path.join(root, 'train/cat/deep')}/ is nested too deep (expected train/<class>/<image>)`,
        `${path.join(root, 'train/loose.png')} is not in a class folder (expected train/<class>/<image>)`,
        expect.stringMatching(/^missing val\/ at .*bad/),
        'train/ has 1 class folder (cat); a classifier needs at least 2',
      ]),
    );
    const lacking = tree('lacking', { ...good, 'train/bird/1.png': 'b' });
    expect(await problems(lacking)).toEqual([
      `${path.join(lacking, 'val')}/ lacks class folder(s) of train/: bird (train/ and val/ need the same classes)`,
    ]);
    const stray = tree('stray', { ...good, 'val/fox/1.png': 'f' });
    expect(await problems(stray)).toEqual(['val/ has class folders not in train/: fox']);
  });

  it('refuses names the server would refuse, and files over the size limit', async () => {
    const root = tree('names', { ...good, 'train/cat/ bad.png': 'x' });
    expect((await problems(root))[0]).toMatch(/the name has a segment with leading or trailing spaces/);
    await expect(scanFolder(tree('big', good), { maxFileBytes: 1 })).rejects.toThrow(/is 2 bytes; the limit is 1/);
  });
});

describe('hashing and naming', () => {
  it('hashes files (cached by size and mtime) and derives a stable digest and name', async () => {
    const root = tree('My Flowers!', good);
    const s = await scanFolder(root);
    const cacheEnv = { ...env, XDG_CACHE_HOME: path.join(dir, 'cache') };
    const seen: number[] = [];
    const hashed = await hashFiles(cacheEnv, s.root, s.files, { onProgress: (n) => seen.push(n) });
    expect(hashed[0]!.sha256).toBe(createHash('sha256').update('c1').digest('hex'));
    expect(seen.at(-1)).toBe(5);
    const again = await hashFiles(cacheEnv, s.root, s.files);
    expect(again.map((f) => f.sha256)).toEqual(hashed.map((f) => f.sha256));
    const digest = contentDigest(hashed);
    expect(contentDigest([...hashed].reverse())).toBe(digest);
    expect(defaultDatasetName(s.root, digest)).toBe(`My-Flowers-${digest.slice(0, 8)}`);
    expect(defaultDatasetName('/tmp/---', digest)).toBe(`dataset-${digest.slice(0, 8)}`);
    expect(defaultDatasetName('/x/café é', digest)).toMatch(/^cafe-e-[0-9a-f]{8}$/);
  });

  it('keeps the session of a folder for its contents and server only', () => {
    const state = { sessionId: 's1', server: 'http://a', name: 'n', digest: 'd1', startedAt: 'now' };
    saveUploadState(env, '/data/x', state);
    expect(loadUploadState(env, '/data/x', 'd1', 'http://a')).toEqual(state);
    expect(loadUploadState(env, '/data/x', 'd2', 'http://a')).toBeNull();
    expect(loadUploadState(env, '/data/x', 'd1', 'http://b')).toBeNull();
    clearUploadState(env, '/data/x');
    expect(loadUploadState(env, '/data/x', 'd1', 'http://a')).toBeNull();
  });
});

describe('config', () => {
  it('is written 0600 under XDG_CONFIG_HOME; GPULAB_URL and GPULAB_TOKEN override it', () => {
    const file = writeConfig(env, { url: 'http://saved:8080', token: 'gpl_saved' });
    expect(file).toBe(path.join(dir, 'cfg', 'gpulab', 'config.json'));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(readConfig(env)).toEqual({ url: 'http://saved:8080', token: 'gpl_saved' });
    expect(resolveSettings(env)).toEqual({
      url: 'http://saved:8080',
      token: 'gpl_saved',
      urlFrom: 'config',
      tokenFrom: 'config',
    });
    expect(resolveSettings({ ...env, GPULAB_URL: 'http://env/', GPULAB_TOKEN: 'gpl_env' })).toMatchObject({
      url: 'http://env',
      token: 'gpl_env',
      urlFrom: 'env',
      tokenFrom: 'env',
    });
    expect(resolveSettings({ HOME: dir })).toMatchObject({ url: 'http://127.0.0.1:8080', token: null });
    expect(configPath({ HOME: '/home/ada' })).toBe('/home/ada/.config/gpulab/config.json');
    writeFileSync(file, '{broken');
    expect(() => readConfig(env)).toThrow(/is not valid JSON: fix or delete it/);
    expect(readFileSync(file, 'utf8')).toBe('{broken');
  });
});

describe('shell completion', () => {
  it('bash and zsh scripts cover every command, option and choice, and parse', () => {
    const bash = bashCompletion(COMMANDS);
    for (const c of COMMANDS) expect(bash).toContain(`    ${c.name})`);
    expect(bash).toContain('--freeze) COMPREPLY=( $(compgen -W "head 1 2 3 4 full" -- "$cur") )');
    expect(bash).toContain('gpulab jobs -q --limit 50');
    expect(bash).toMatch(/complete .* -F _gpulab gpulab/);
    execFileSync('bash', ['-n'], { input: bash });
    expect(zshCompletion(COMMANDS)).toContain('bashcompinit');
  });
});
