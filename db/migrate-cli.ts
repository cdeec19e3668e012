import { loadConfigOrExit } from '../lib/config';
import { createSql, ensureDatabase } from './index';
import { migrate } from './migrate';

const config = loadConfigOrExit();
const { created } = await ensureDatabase(config.DATABASE_URL);
const sql = createSql(config.DATABASE_URL, { max: 1 });
const applied = await migrate(sql);
await sql.end();
console.log(`${created ? 'created the database; ' : ''}${applied.length ? `applied ${applied.join(', ')}` : 'no pending migrations'}`);
