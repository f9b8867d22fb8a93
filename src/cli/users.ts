// `sharedllm users`: the users of a primary node, managed by its operator on the node's machine (local: it
// opens the node's data dir; a running node sees the change at once). Each user gets an API key, printed once
// and stored only as a hash; with it they reach their own adapters, consent records and audit log.
import { type CommandSpec, FLAG_SHAPES, type Parsed, UsageError } from './args.ts';
import { expandHome } from './coordinator.ts';

export const ACTIONS = ['add', 'list', 'remove'] as const;
type Action = (typeof ACTIONS)[number];

/** A user's name: what `users remove` and the node's logs call them. */
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const spec: CommandSpec = {
  name: 'users',
  summary: "Manage a primary's users: add one (prints their API key once), list them, remove one with all their data.",
  usage: [
    'sharedllm users add NAME [--data-dir D | --api-port P]',
    '       sharedllm users list [--data-dir D | --api-port P] [--json]',
    '       sharedllm users remove NAME [--data-dir D | --api-port P]',
  ].join('\n'),
  positionals: ['action', 'name'],
  flags: {
    'data-dir': { type: 'string', arg: 'D', help: "the primary's data dir (default: ~/.sharedllm/primary-<api-port>, as `sharedllm node` uses)" },
    'api-port': { ...FLAG_SHAPES.port, default: 8080, help: 'the primary\'s --api-port, to find its default data dir' },
    json: { type: 'boolean', default: false, help: 'list: print JSON instead of a table' },
  },
  examples: [
    'sharedllm users add alice          # prints alice\'s key (sllm_...) on stdout, once',
    'sharedllm users list',
    'sharedllm users remove alice       # deletes her adapters, kept texts, audit log and key',
  ],
};

export async function run({ flags, positionals }: Parsed): Promise<number> {
  const [action, name] = positionals;
  if (action === undefined || !(ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError(`which action? one of ${ACTIONS.join(', ')}${action === undefined ? '' : ` (got '${action}')`}`, 'users');
  }
  if (action !== 'list' && (name === undefined || !USER_NAME.test(name))) {
    throw new UsageError(`${action} needs a user NAME (letters, digits, . _ -; at most 64)${name === undefined ? '' : `, got '${name}'`}`, 'users');
  }
  if (action === 'list' && name !== undefined) throw new UsageError(`list takes no NAME (got '${name}')`, 'users');
  const dataDir = expandHome((flags['data-dir'] as string | undefined) ?? `~/.sharedllm/primary-${flags['api-port'] as number}`);
  const { PrimaryStore } = await import('../api/adapters/store.ts');
  const store = new PrimaryStore(dataDir);
  try {
    const actions: Record<Action, () => Promise<number>> = {
      add: async () => {
        const { hashUserKey, newUserKey } = await import('../api/users.ts');
        const key = newUserKey();
        store.addUser(name!, hashUserKey(key));
        process.stderr.write(`added user '${name}' to ${store.path}. Their API key follows, shown this once (only its hash is kept): give it to them to send as Authorization: Bearer <key>.\n`);
        process.stdout.write(`${key}\n`);
        return 0;
      },
      list: async () => {
        const users = store.listUsers().map((u) => ({ ...u, adapters: store.adaptersOf(u.id).length }));
        if (flags.json === true) {
          process.stdout.write(`${JSON.stringify(users.map((u) => ({ id: u.id, name: u.name, created_at: new Date(u.createdAt).toISOString(), adapters: u.adapters })))}\n`);
        } else if (users.length === 0) {
          process.stdout.write(`no users in ${store.path} (add one with \`sharedllm users add NAME\`)\n`);
        } else {
          for (const u of users) process.stdout.write(`${u.name.padEnd(24)} ${u.id}  since ${new Date(u.createdAt).toISOString()}  ${u.adapters} adapter(s)\n`);
        }
        return 0;
      },
      remove: async () => {
        const user = store.userByName(name!);
        if (user === undefined) throw new Error(`no user named '${name}' in ${store.path} (\`sharedllm users list\` shows them)`);
        const [{ AdapterFiles }, { deleteUser }] = await Promise.all([import('../api/adapters/files.ts'), import('../api/adapters/deletion.ts')]);
        const adapters = store.adaptersOf(user.id).length;
        await deleteUser(store, new AdapterFiles(dataDir), user.id);
        process.stdout.write(`removed user '${name}': their key, ${adapters} adapter(s) with their consent records and kept texts, and their audit log\n`);
        return 0;
      },
    };
    return await actions[action as Action]();
  } finally {
    store.close();
  }
}
