// Import floors of src/ (run by `npm run lint`): each folder may import only folders on lower floors, nothing
// imports in a cycle (type-only imports included), and product code never imports test tooling.
// Floors, lowest first; folders on one floor do not import each other.
const FLOORS = [['util'], ['proto'], ['obs'], ['client'], ['block', 'sheep', 'dog'], ['nbd'], ['iscsi'], ['initiator'], ['target'], ['drill'], ['cli']];

// Product modules that still import test tooling; each one is to be removed (then delete its line here).
// - sheep/gateway.ts switches ackEarly (a deliberately broken build) on from the environment;
// - sheep/store/crashfs.ts takes its Rng from the fuzzers.
// Both are to become ordinary filters composed by the CLI or the tests.
const TEMPORARY = [];

const alt = (names) => `(${names.join('|')})`;

/** One rule per floor: its folders may not import a folder on the same or a higher floor (other than their own). */
const floorRules = FLOORS.flatMap((floor, i) =>
  floor.map((name) => {
    const notLower = FLOORS.slice(i).flat().filter((n) => n !== name);
    return {
      name: `floor-${name}`,
      comment: `src/${name} sits above ${FLOORS.slice(0, i).flat().join(', ') || 'nothing'} only; it may not import ${notLower.join(', ')}`,
      severity: 'error',
      from: { path: `^src/${name}/`, pathNot: TEMPORARY.map((t) => t.from) },
      to: { path: `^src/${alt(notLower)}/` },
    };
  }),
);

module.exports = {
  forbidden: [
    ...floorRules,
    ...TEMPORARY.map((t, i) => ({
      name: `temporary-exception-${i + 1}`,
      comment: 'the one upward import this product module may still make (see TEMPORARY)',
      severity: 'error',
      from: { path: t.from },
      to: { path: '^src/', pathNot: [t.to, '^src/(util|proto|obs|client|sheep)/'] },
    })),
    {
      name: 'no-circular',
      comment: 'no import cycles, type-only imports included (but the TEMPORARY pair: drill/faults.ts types the gateway it wraps)',
      severity: 'error',
      from: { pathNot: TEMPORARY.flatMap((t) => [t.from, t.to]) },
      to: { circular: true },
    },
    {
      name: 'no-test-tooling-in-product',
      comment: 'product code never imports the tests, their helpers or test-only packages',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(drill|cli)/' },
      to: { path: ['^test/', '(^|/)node_modules/(vitest|fast-check|@vitest)/'] },
    },
    {
      name: 'no-dev-dependencies-in-product',
      comment: 'what src/ imports must be installed with the product (dependencies, not devDependencies)',
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a cycle of types is still a cycle.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
