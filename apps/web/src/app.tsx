import { useEffect } from 'react';
import { AuthProvider, useAuth } from './auth';
import { Layout } from './components/layout';
import { Loading } from './components/notice';
import { ClusterPage } from './pages/admin/cluster';
import { GroupsPage } from './pages/admin/groups';
import { QueuePage } from './pages/admin/queue';
import { UsagePage } from './pages/admin/usage';
import { HomePage } from './pages/home';
import { JobPage } from './pages/job/job-page';
import { JobsPage } from './pages/jobs';
import { LoginPage } from './pages/login';
import { ReservationsPage } from './pages/reservations';
import { SubmitPage } from './pages/submit/submit-page';
import { WebhooksPage } from './pages/webhooks';
import { Link, matchPath, useLocation } from './router';

const TITLES: [string, string][] = [
  ['/', 'Home'],
  ['/jobs', 'Jobs'],
  ['/jobs/:id', 'Job'],
  ['/submit', 'New job'],
  ['/reservations', 'Reservations'],
  ['/notifications', 'Notifications'],
  ['/admin/groups', 'Groups'],
  ['/admin/usage', 'Usage'],
  ['/admin/queue', 'Queue'],
  ['/admin/cluster', 'Cluster'],
];

function Page({ path }: { path: string }) {
  const job = matchPath('/jobs/:id', path);
  if (job) return <JobPage key={job.id} id={job.id!} />;
  switch (path) {
    case '/':
      return <HomePage />;
    case '/jobs':
      return <JobsPage />;
    case '/submit':
      return <SubmitPage />;
    case '/reservations':
      return <ReservationsPage />;
    case '/notifications':
      return <WebhooksPage />;
    case '/admin/groups':
      return <GroupsPage />;
    case '/admin/usage':
      return <UsagePage />;
    case '/admin/queue':
      return <QueuePage />;
    case '/admin/cluster':
      return <ClusterPage />;
    default:
      return (
        <>
          <h1>Not found</h1>
          <p>
            There is no page at <code>{path}</code>. <Link to="/">Go home</Link>.
          </p>
        </>
      );
  }
}

function Shell() {
  const { status } = useAuth();
  const { path } = useLocation();
  const title = TITLES.find(([p]) => matchPath(p, path))?.[1];
  useEffect(() => {
    document.title = status === 'signed-out' ? 'Sign in · gpulab' : title ? `${title} · gpulab` : 'gpulab';
  }, [title, status]);
  if (status === 'loading') return <Loading what="gpulab" />;
  if (status === 'signed-out') return <LoginPage />;
  return (
    <Layout>
      <Page path={path} />
    </Layout>
  );
}

/** The dashboard: session first (sign-in page when there is none), then the page the URL names. */
export function App() {
  return (
    <AuthProvider>
      <Shell />
    </AuthProvider>
  );
}
