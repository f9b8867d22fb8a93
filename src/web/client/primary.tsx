// The primary's page (GET / on its API port): the chat playground, the live pipeline, and, for a user who
// signed in with their API key, their adapters, consent records, audit log and the privacy statement.
import { useEffect, useState } from 'preact/hooks';
import { type PrimarySnapshot, PrimarySnapshotSchema } from '../wire.ts';
import { Account } from './account.tsx';
import { Chat } from './chat.tsx';
import { useKey } from './key.ts';
import { type LiveStatus, follow } from './net.ts';
import { Pipeline } from './pipeline.tsx';
import { Card, Header, KeyForm } from './ui.tsx';

export function PrimaryPage() {
  const [key, setKey] = useKey();
  const [snapshot, setSnapshot] = useState<PrimarySnapshot | undefined>();
  const [status, setStatus] = useState<LiveStatus>({ state: 'connecting' });
  useEffect(() => {
    setSnapshot(undefined);
    return follow('/v1/dashboard/live', PrimarySnapshotSchema, key, setSnapshot, setStatus);
  }, [key]);
  const locked = status.state === 'unauthorized';
  return (
    <>
      <Header page="primary" home="primary" status={status}>
        <KeyForm label="API key" current={key} onKey={setKey} />
      </Header>
      <main id="main" tabIndex={-1} class="page primary">
        {locked && <p class="notice warn">This node needs an API key: sign in above (it stays in this tab only).</p>}
        {/* Re-mounted per key: nothing read with one key is shown under another. */}
        <div class="columns" key={key ?? ''}>
          <Card title="Playground" id="playground" class="col-main">
            {locked ? <p class="muted">Sign in to chat.</p> : <Chat apiKey={key} baseModel={snapshot?.health?.model} />}
          </Card>
          <div class="col-side">
            {snapshot ? <Pipeline s={snapshot} /> : <Card title="Pipeline" id="pipeline"><p class="muted">{locked ? 'Sign in to see the pipeline.' : 'Waiting for the node…'}</p></Card>}
          </div>
        </div>
        <div class="account" key={`account-${key ?? ''}`}>
          {key ? <Account apiKey={key} /> : (
            <Card title="Your data" id="account"><p class="muted">Sign in with your own API key to see your adapters, the consent you gave, your audit log, and to export or delete your data.</p></Card>
          )}
        </div>
      </main>
    </>
  );
}
