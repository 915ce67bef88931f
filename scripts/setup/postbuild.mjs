// After tsc: make the CLI entry points executable so `npx sheepfold` / `npx dog` and the bin links work.
import fs from 'node:fs';
for (const f of ['dist/cli/sheepfold.js', 'dist/cli/dog.js']) {
  if (fs.existsSync(f)) fs.chmodSync(f, 0o755);
}
