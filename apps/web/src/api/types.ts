/** Response shapes the SDK does not type yet (groups, reports, artifacts). */

export type GroupRole = 'student' | 'instructor' | 'admin';

export interface Balance {
  grantedHours: number;
  heldHours: number;
  usedHours: number;
  freeHours: number;
}

export interface GroupSummary {
  id: string;
  name: string;
  budgetHours: number;
  periodStart: string;
  periodEnd: string;
  defaultMaxHours: number;
  maxRunningGpusPerUser: number | null;
  myRole: GroupRole | null;
  quota: Balance | null;
}

export interface Member extends Balance {
  membershipId: string;
  user: { id: string; email: string; name: string };
  role: GroupRole;
}

export interface GroupTotals {
  budgetHours: number;
  grantedHours: number;
  heldHours: number;
  usedHours: number;
  unallocatedHours: number;
}

export interface GroupView extends Omit<GroupSummary, 'myRole' | 'quota'> {
  totals: GroupTotals;
  members: Member[];
}

export interface UsageRow {
  userId?: string;
  userEmail?: string;
  userName?: string;
  groupId?: string;
  groupName?: string;
  flavor?: string;
  month?: string;
  gpuSeconds: number;
  gpuHours: number;
  amountMicros: number;
  jobs: number;
}

export interface UsageReport {
  by: string[];
  from: string | null;
  to: string | null;
  rows: UsageRow[];
  totals: UsageRow;
}

export interface ArtifactFile {
  path: string;
  key: string;
  bytes: number;
  url: string;
}

export interface JobArtifacts {
  expiresInSeconds: number;
  model: ArtifactFile[];
  metrics: ArtifactFile | null;
  logs: ArtifactFile[];
  checkpoints: { key: string; at: string }[];
}
