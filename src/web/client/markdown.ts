// Markdown from the node (the catalogue, the privacy statement) to safe HTML: marked renders, DOMPurify
// removes anything that could run (scripts, handlers, javascript: URLs, forms, iframes). Relative links are
// resolved against the folder the file is served from; links to files this node does not serve are kept as
// text.
import DOMPurify from 'dompurify';
import { marked } from 'marked';

export interface MarkdownOptions {
  /** The URL folder relative images resolve against, e.g. '/ui/bets/'. */
  base: string;
  /** Relative paths (after the base) this node serves; others lose their link. */
  served: (path: string) => boolean;
  /** Tables with more body rows than this fold into a <details> (default: none fold). */
  foldRowsOver?: number;
}

export function renderMarkdown(text: string, options: MarkdownOptions): DocumentFragment {
  const html = marked.parse(text, { async: false, gfm: true });
  const fragment = DOMPurify.sanitize(html, { RETURN_DOM_FRAGMENT: true, FORBID_TAGS: ['style', 'form', 'input', 'iframe'], FORBID_ATTR: ['style'] });
  for (const img of fragment.querySelectorAll('img')) {
    const src = img.getAttribute('src') ?? '';
    if (isRelative(src)) img.setAttribute('src', options.base + src.replace(/^\.\//, ''));
    img.setAttribute('loading', 'lazy');
  }
  for (const a of fragment.querySelectorAll('a')) {
    const href = a.getAttribute('href') ?? '';
    if (href.startsWith('#')) continue;
    if (isRelative(href)) {
      if (options.served(href.replace(/^\.\//, ''))) a.setAttribute('href', options.base + href.replace(/^\.\//, ''));
      else {
        a.removeAttribute('href');
        a.setAttribute('title', `${href} (in the repository)`);
      }
    } else {
      a.setAttribute('rel', 'noopener noreferrer');
      a.setAttribute('target', '_blank');
    }
  }
  // Wide tables scroll on their own at 360 px instead of widening the page.
  for (const table of fragment.querySelectorAll('table')) {
    const wrap = document.createElement('div');
    wrap.className = 'table-wrap';
    const rows = table.tBodies[0]?.rows.length ?? 0;
    if (options.foldRowsOver !== undefined && rows > options.foldRowsOver) {
      const details = document.createElement('details');
      const summary = document.createElement('summary');
      summary.textContent = `Show the table (${rows} rows)`;
      details.append(summary, wrap);
      table.replaceWith(details);
    } else {
      table.replaceWith(wrap);
    }
    wrap.append(table);
  }
  return fragment;
}

function isRelative(url: string): boolean {
  return url !== '' && !/^[a-z][a-z0-9+.-]*:/i.test(url) && !url.startsWith('/') && !url.startsWith('#');
}
