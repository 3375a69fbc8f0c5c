/**
 * The flag parsers of src/cli/flags.ts with values (hand-computed), the one ε grammar shared by
 * protect and train, and every command refusing a bad number in one line naming the flag (exit 1,
 * no stack trace).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OnepixelError } from '../src/errors.js';
import { budget, epochList, positiveInt, positiveNumber, rate, seed } from '../src/cli/flags.js';
import { configFrom } from '../src/cli/train.js';
import { runCli } from './helpers.js';

const refuses = (parse: (v: string) => unknown, value: string, flag: string) =>
  assert.throws(
    () => parse(value),
    (e: Error) =>
      e instanceof OnepixelError && e.message.includes(flag) && !e.message.includes('\n'),
    `${flag} ${value}`,
  );

describe('flag parsers', () => {
  it('counts are positive integers', () => {
    const p = positiveInt('--epochs');
    assert.equal(p('1'), 1);
    assert.equal(p(' 12 '), 12);
    for (const v of ['0', '-3', '1.5', 'abc', '', '1e400', 'NaN', '0x10', '2abc'])
      refuses(p, v, '--epochs');
  });

  it('seeds are non-negative integers', () => {
    const p = seed();
    assert.equal(p('0'), 0);
    assert.equal(p('42'), 42);
    for (const v of ['abc', '-1', '0.5', '', 'Infinity']) refuses(p, v, '--seed');
  });

  it('rates are finite numbers in their range', () => {
    const acc = rate('--stop-accuracy', 0, 1, 'min');
    assert.equal(acc('1'), 1);
    assert.equal(acc('0.99'), 0.99);
    for (const v of ['0', '1.01', '-0.5', 'x', 'Infinity']) refuses(acc, v, '--stop-accuracy');
    const mom = rate('--momentum', 0, 1, 'max');
    assert.equal(mom('0'), 0);
    refuses(mom, '1', '--momentum');
    const lr = positiveNumber('--lr');
    assert.equal(lr('5e-2'), 0.05);
    for (const v of ['0', '-1', 'Infinity', '1/2']) refuses(lr, v, '--lr');
    assert.deepEqual(epochList('--milestones')('100,150'), [100, 150]);
    refuses(epochList('--milestones'), '100,x', '--milestones');
  });

  it('ε and steps: a fraction, a ratio, or an integer ≥ 1 read as /255', () => {
    const p = budget('--epsilon');
    assert.equal(p('0.0314'), 0.0314);
    assert.equal(p('8/255'), 8 / 255);
    assert.equal(p('8'), 8 / 255);
    assert.equal(p('1'), 1 / 255);
    assert.equal(p('0.8/255'), 0.8 / 255);
    assert.equal(p('.5'), 0.5);
    for (const v of ['0', '-0.01', '1.0', '255', '300/255', 'x', '', '8/0'])
      refuses(p, v, '--epsilon');
    refuses(budget('--attack-step'), '256', '--attack-step');
  });

  it("train's config records ε and the PGD step as fractions, whatever form the flag took", () => {
    const f = {
      data: '',
      seed: 0,
      backend: 'wasm' as const,
      attackSteps: 10,
      resume: false,
      force: false,
    };
    for (const [eps, step] of [
      ['8', '2'],
      ['8/255', '2/255'],
      [String(8 / 255), String(2 / 255)],
    ]) {
      const c = configFrom(
        {
          ...f,
          strategy: 'at',
          epsilon: budget('--epsilon')(eps),
          attackStep: budget('--attack-step')(step),
        },
        'wasm',
      );
      assert.ok(c.adversarial);
      assert.ok(Math.abs(c.adversarial.epsilon - 8 / 255) < 1e-15, eps);
      assert.ok(Math.abs(c.adversarial.step - 2 / 255) < 1e-15, step);
    }
  });
});

describe('every command refuses a bad number in one line naming the flag', () => {
  const cases: Array<[string[], string]> = [
    [
      ['protect', '--dataset', 'cifar10', '--data-dir', 'x', '--out', 'y', '--seed', 'abc'],
      '--seed',
    ],
    [
      ['protect', '--dataset', 'cifar10', '--data-dir', 'x', '--out', 'y', '--pixels', '0'],
      '--pixels',
    ],
    [
      [
        'protect',
        '--dataset',
        'cifar10',
        '--data-dir',
        'x',
        '--out',
        'y',
        '--method',
        'em',
        '--stop-accuracy',
        '2',
      ],
      '--stop-accuracy',
    ],
    [
      [
        'protect',
        '--dataset',
        'cifar10',
        '--data-dir',
        'x',
        '--out',
        'y',
        '--method',
        'em',
        '--em-step-size',
        '0',
      ],
      '--em-step-size',
    ],
    [['train', '--data', 'x', '--seed', 'abc'], '--seed'],
    [['train', '--data', 'x', '--epochs', '1.5'], '--epochs'],
    [['train', '--data', 'x', '--lr', 'fast'], '--lr'],
    [['train', '--data', 'x', '--epsilon', '300'], '--epsilon'],
    [['train', '--data', 'x', '--attack-step', '-2'], '--attack-step'],
    [['audit', '--clean', 'x', '--protected', 'y', '--out', 'z', '--seed', '-1'], '--seed'],
    [['audit', '--clean', 'x', '--protected', 'y', '--out', 'z', '--epochs', 'ten'], '--epochs'],
  ];
  for (const [args, flag] of cases)
    it(`${args[0]} ${flag} ${args[args.length - 1]}`, async () => {
      const r = await runCli(args, 60_000);
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], new RegExp(`^onepixel: error: ${flag} `));
      assert.doesNotMatch(r.stderr, /\bat \w+ \(|node:internal/);
    });
});

describe('protect: every flag acts or is refused', () => {
  const base = ['protect', '--dataset', 'cifar10', '--data-dir', 'x', '--out', 'y'];
  const cases: Array<[string[], RegExp]> = [
    [
      ['--method', 'em', '--pixels', '2'],
      /^onepixel: error: --pixels applies to --method ops, cifar10s, not em$/,
    ],
    [
      ['--method', 'random-noise', '--objective', 'paper'],
      /--objective applies to --method ops, cifar10s, not random-noise/,
    ],
    [['--em-steps', '3'], /--em-steps applies to --method em, cifar10s, not ops/],
    [['--seed', '3'], /--seed applies to --method random-noise, em, cifar10s, not ops/],
    [
      ['--method', 'random-noise', '--workers', '2'],
      /--workers applies to --method em, cifar10s, not random-noise/,
    ],
    [
      ['--method', 'random-noise', '--resume'],
      /--resume applies to --method em, cifar10s, not random-noise/,
    ],
    [
      ['--method', 'em', '--noise', 'n.npy', '--em-steps', '3'],
      /--em-steps does not apply with --noise/,
    ],
    [['--method', 'em', '--noise', 'n.npy', '--seed', '3'], /--seed does not apply with --noise/],
  ];
  for (const [args, re] of cases)
    it(args.join(' '), async () => {
      const r = await runCli([...base, ...args], 60_000);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr.trim(), re);
    });
});
