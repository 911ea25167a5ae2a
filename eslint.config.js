import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.lab/', 'coverage/', '.tools/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // The lab dashboard's page script runs in the browser.
    files: ['lab/dashboard/public/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { document: 'readonly', Node: 'readonly', fetch: 'readonly', EventSource: 'readonly' },
    },
  },
  ...importBoundaries(),
);

/**
 * The layers, kept by `no-restricted-imports`: the services (apiserver, kubelet-sim, cri-shim,
 * kexec) share only through shared/ and never import each other, lab/, e2e/ or bench/; shared/
 * imports none of them. A service's tests keep to the same rule, except that they may start real
 * daemons through lab/test-support/ (etcd). e2e/, lab/ and bench/ sit on top and import anything.
 */
function importBoundaries() {
  const SERVICES = ['apiserver', 'kubelet-sim', 'cri-shim', 'kexec'];
  const TOP = ['lab', 'e2e', 'bench'];
  const TESTS = ['**/*.test.ts', '**/test-support/**'];
  /** An import path that enters one of `dirs` (a relative path, so any `../` before it). */
  const entering = (dirs) => `(^|/)(${dirs.join('|')})/`;
  const restrict = (files, ignores, regex, message) => ({
    files,
    ignores,
    rules: { 'no-restricted-imports': ['error', { patterns: [{ regex, message }] }] },
  });
  return [
    ...SERVICES.flatMap((svc) => {
      const others = SERVICES.filter((s) => s !== svc);
      return [
        restrict(
          [`${svc}/**/*.ts`],
          TESTS,
          entering([...others, ...TOP]),
          `${svc}/ shares code with the other services only through shared/`,
        ),
        restrict(
          TESTS.map((t) => `${svc}/${t}`),
          [],
          `${entering([...others, 'e2e', 'bench'])}|(^|/)lab/(?!test-support/)`,
          `${svc}/ tests may use shared/ and lab/test-support/, no other service (tests that cross services live in e2e/)`,
        ),
      ];
    }),
    restrict(
      ['shared/**/*.ts'],
      [],
      entering([...SERVICES, ...TOP]),
      'shared/ never imports a service, lab/, e2e/ or bench/',
    ),
  ];
}
