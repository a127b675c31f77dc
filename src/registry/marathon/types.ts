/**
 * The subset of Marathon's REST shapes ci-edge reads (Marathon 1.5+ `GET /v2/apps?embed=apps.tasks`, plus the
 * pre-1.5 fields still seen in the wild: `container.docker.portMappings`, `ipAddress`, `ports`). Everything is
 * optional because Marathon omits what is unset, and the mapper validates what it uses.
 */

export interface MarathonPortDefinition {
  port?: number;
  protocol?: string;
  name?: string;
  labels?: Record<string, string>;
}

export interface MarathonPortMapping {
  containerPort?: number;
  hostPort?: number;
  servicePort?: number;
  protocol?: string;
  name?: string;
  labels?: Record<string, string>;
}

export interface MarathonHealthCheckResult {
  alive?: boolean;
  consecutiveFailures?: number;
  firstSuccess?: string | null;
  lastSuccess?: string | null;
  lastFailure?: string | null;
  lastFailureCause?: string;
  /** 1.4+ */
  instanceId?: string;
  /** pre-1.4 */
  taskId?: string;
}

export interface MarathonTask {
  id: string;
  appId?: string;
  host?: string;
  ports?: number[];
  servicePorts?: number[];
  ipAddresses?: { ipAddress: string; protocol?: string }[];
  state?: string;
  stagedAt?: string | null;
  startedAt?: string | null;
  version?: string;
  slaveId?: string;
  healthCheckResults?: MarathonHealthCheckResult[];
}

export interface MarathonNetwork {
  /** `host`, `container/bridge`, `container` (USER networking, with `name`). */
  mode?: string;
  name?: string;
}

export interface MarathonApp {
  id: string;
  instances?: number;
  labels?: Record<string, string>;
  networks?: MarathonNetwork[];
  portDefinitions?: MarathonPortDefinition[];
  /** pre-1.5 */
  ports?: number[];
  container?: {
    type?: string;
    portMappings?: MarathonPortMapping[];
    docker?: { image?: string; network?: string; portMappings?: MarathonPortMapping[]; [k: string]: unknown };
    [k: string]: unknown;
  } | null;
  /** pre-1.5 USER networking */
  ipAddress?: { networkName?: string; discovery?: { ports?: { number?: number; name?: string; protocol?: string }[] } } | null;
  healthChecks?: { protocol?: string; path?: string; portIndex?: number; [k: string]: unknown }[];
  deployments?: { id: string }[];
  tasksStaged?: number;
  tasksRunning?: number;
  tasksHealthy?: number;
  tasksUnhealthy?: number;
  version?: string;
  tasks?: MarathonTask[];
  [k: string]: unknown;
}

/** Task states after which the task never serves again (Mesos TaskState terminal and going-away states). */
export const endedTaskStates: ReadonlySet<string> = new Set([
  'TASK_KILLING',
  'TASK_KILLED',
  'TASK_FAILED',
  'TASK_FINISHED',
  'TASK_LOST',
  'TASK_ERROR',
  'TASK_DROPPED',
  'TASK_GONE',
  'TASK_GONE_BY_OPERATOR',
  'TASK_UNREACHABLE',
  'TASK_UNKNOWN',
]);
