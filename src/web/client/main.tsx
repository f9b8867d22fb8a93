// The dashboard bundle's entry: the page shell (src/web/dashboard.ts) names its page in <body data-page>.
import { render } from 'preact';
import { CataloguePage } from './catalogue.tsx';
import { CoordinatorPage } from './coordinator.tsx';
import { PrimaryPage } from './primary.tsx';
import './style.css';

const page = document.body.dataset['page'];
const app = document.getElementById('app');
if (app) {
  app.replaceChildren();
  // The catalogue links back to the node's own page: is GET / a coordinator's or a primary's? /health says.
  const home = async (): Promise<'coordinator' | 'primary'> => {
    const health = await fetch('/health').then((r) => r.json() as Promise<Record<string, unknown>>, () => ({}));
    return 'coordinator' in health ? 'coordinator' : 'primary';
  };
  if (page === 'coordinator') render(<CoordinatorPage />, app);
  else if (page === 'primary') render(<PrimaryPage />, app);
  else void home().then((h) => render(<CataloguePage home={h} />, app));
}
