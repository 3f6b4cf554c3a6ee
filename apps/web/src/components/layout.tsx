import { type ReactNode, useEffect, useRef, useState } from 'react';
import { useAuth } from '../auth';
import { Link, useLocation } from '../router';

interface NavItem {
  to: string;
  label: string;
}

const STUDENT_NAV: NavItem[] = [
  { to: '/', label: 'Home' },
  { to: '/jobs', label: 'Jobs' },
  { to: '/submit', label: 'New job' },
  { to: '/reservations', label: 'Reservations' },
  { to: '/notifications', label: 'Notifications' },
];

const TEACHING_NAV: NavItem[] = [
  { to: '/admin/groups', label: 'Groups' },
  { to: '/admin/usage', label: 'Usage' },
  { to: '/admin/queue', label: 'Queue' },
  { to: '/admin/cluster', label: 'Cluster' },
];

const isCurrent = (to: string, path: string) => (to === '/' ? path === '/' : path === to || path.startsWith(`${to}/`));

/** Header with the navigation (a menu button on narrow screens), the signed-in user, and the page. */
export function Layout({ children }: { children: ReactNode }) {
  const { user, managed, signOut } = useAuth();
  const { path } = useLocation();
  const [open, setOpen] = useState(false);
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);

  // A new page: close the menu and move focus to the content, so screen readers announce it.
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs on each navigation (path)
  useEffect(() => {
    setOpen(false);
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.focus();
    window.scrollTo(0, 0);
  }, [path]);

  const items = managed.length ? [...STUDENT_NAV, ...TEACHING_NAV] : STUDENT_NAV;
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link to="/" className="brand">
          gpulab
        </Link>
        <button
          type="button"
          className="menu-button"
          aria-expanded={open}
          aria-controls="site-nav"
          onClick={() => setOpen((o) => !o)}
        >
          Menu
        </button>
        <nav id="site-nav" aria-label="Main" className={open ? 'open' : ''}>
          <ul>
            {items.map((i) => (
              <li key={i.to}>
                <Link to={i.to} aria-current={isCurrent(i.to, path) ? 'page' : undefined}>
                  {i.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <span title={user?.email}>
            {user?.name} <span className="muted">({user?.role})</span>
          </span>
          <button type="button" className="secondary" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        {children}
      </main>
    </>
  );
}
