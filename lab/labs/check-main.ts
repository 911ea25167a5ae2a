/**
 * `npm run lab:check -- N [--dir .lab]`: runs the check of guided lab N (docs/labs/) against the
 * running lab; exit 0 when the step worked, 1 when not (with what is missing), 2 for usage.
 */
import { Command } from 'commander';
import { CHECKS } from './checks.js';

const program = new Command('lab:check')
  .argument('<lab>', `the lab's number: ${Object.keys(CHECKS).join(', ')}`)
  .option('--dir <dir>', "the lab's state directory", '.lab')
  .showHelpAfterError();

async function main(): Promise<number> {
  program.parse();
  const n = Number(program.args[0]);
  const check = CHECKS[n];
  if (!check) {
    process.stderr.write(
      `no check for lab ${program.args[0]}: expected one of ${Object.keys(CHECKS).join(', ')}\n`,
    );
    return 2;
  }
  const { dir } = program.opts<{ dir: string }>();
  const result = await check.run(dir);
  process.stdout.write(`lab ${n} (${check.title}): ${result.ok ? 'DONE' : 'NOT YET'}\n`);
  for (const l of result.lines) process.stdout.write(`  ${l}\n`);
  return result.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`lab:check: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
