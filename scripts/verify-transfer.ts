/**
 * `npm run verify-transfer -- <package.tar> [--key <private key PEM>] [--signer <fingerprint>] [--out <dir>]`
 *
 * What the acquirer of a business transfer runs on the package TopCall sent (D8): checks
 * TopCall's signature over the manifest, every file's size and SHA-256 against the manifest
 * and, with the private key, that every file decrypts and authenticates (`--out` writes the
 * decrypted files). Prints the manifest's SHA-256 to acknowledge with. Exit code 0 when
 * everything holds, 1 when anything does not (each problem names its file), 2 on bad usage.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { verifyTransferPackage } from '../lib/verify-transfer';

const usage = 'usage: npm run verify-transfer -- <package.tar> [--key <private key PEM file>] [--signer <SHA-256 of TopCall’s signing key>] [--out <folder for the decrypted files>]';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { key: { type: 'string' }, signer: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length !== 1) {
    console.error(usage);
    return values.help ? 0 : 2;
  }
  if (values.out && !values.key) {
    console.error('--out needs --key: only the private key decrypts the files');
    return 2;
  }
  const report = await verifyTransferPackage(positionals[0]!, {
    ...(values.key ? { privateKeyPem: await readFile(values.key, 'utf8') } : {}),
    ...(values.signer ? { signerKeySha256: values.signer } : {}),
    ...(values.out ? { outDir: values.out } : {}),
  });
  if (values.json) {
    const { manifest: _manifest, ...rest } = report;
    console.log(JSON.stringify(rest, null, 1));
  } else {
    console.log(`package     ${positionals[0]}`);
    console.log(`transfer    ${report.transferId ?? '?'}`);
    console.log(`files       ${report.files} in the manifest${values.key ? `, ${report.decrypted} decrypted and authenticated, with the audio of ${report.audio} recordings` : ' (not decrypted: no --key)'}`);
    console.log(`signer      ${report.signerKeySha256 ?? '?'}${values.signer ? '' : '  (compare with the fingerprint in TopCall’s email, or pass --signer)'}`);
    console.log(`manifest    sha256 ${report.manifestSha256 ?? '?'}  (acknowledge with this)`);
    for (const p of report.problems) console.log(`PROBLEM     ${p.path}: ${p.problem}`);
    console.log(report.ok ? 'OK: the package is intact and signed by TopCall.' : `FAILED: ${report.problems.length} problem(s).`);
  }
  return report.ok ? 0 : 1;
}

process.exitCode = await main();
