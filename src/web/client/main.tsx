// The dashboard bundle's entry: the page shell (src/web/dashboard.ts) names its page in <body data-page>.
import { render } from 'preact';
import { CataloguePage } from './catalogue.tsx';
import { CoordinatorPage } from './coordinator.tsx';
import { PrimaryPage } from './primary.tsx';
import './style.css';
import * as z from 'zod';

/** A coordinator's /health names the coordinator; a primary's names its model. */
const CoordinatorHealth = z.object({ coordinator: z.object({ id: z.string() }).loose() }).loose();

const page = document.body.dataset['page'];
const app = document.getElementById('app');
if (app) {
  app.replaceChildren();
  // The catalogue links back to the node's own page: is GET / a coordinator's or a primary's? /health says.
  const home = async (): Promise<'coordinator' | 'primary'> => {
    const health: unknown = await fetch('/health').then((r) => r.json(), () => ({}));
    return CoordinatorHealth.safeParse(health).success ? 'coordinator' : 'primary';
  };
  if (page === 'coordinator') render(<CoordinatorPage />, app);
  else if (page === 'primary') render(<PrimaryPage />, app);
  else void home().then((h) => render(<CataloguePage home={h} />, app));
}
