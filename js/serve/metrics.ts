// Prometheus metrics of the service (prom-client, one registry per server):
// requests by route and status, request latency, atoms featurized and the
// throughput of the last request, and the state of the concurrency cap.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  requests: Counter<'route' | 'method' | 'status'>;
  latency: Histogram<'route'>;
  atoms: Counter<'route'>;
  computeSeconds: Counter<'route'>;
  atomsPerSecond: Gauge<'route'>;
  running: Gauge;
  waiting: Gauge;
  cancelled: Counter<'route'>;
}

export function createMetrics(state: () => { running: number; waiting: number }): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'acdc_' });
  return {
    registry,
    requests: new Counter({ name: 'acdc_http_requests_total', help: 'HTTP requests answered, by route, method and status code', labelNames: ['route', 'method', 'status'], registers: [registry] }),
    latency: new Histogram({
      name: 'acdc_http_request_duration_seconds',
      help: 'Time from receiving a request to sending its answer, in seconds',
      labelNames: ['route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    atoms: new Counter({ name: 'acdc_atoms_total', help: 'Atoms featurized (or predicted) in successful requests', labelNames: ['route'], registers: [registry] }),
    computeSeconds: new Counter({
      name: 'acdc_compute_seconds_total',
      help: 'Seconds spent computing successful requests (atoms_total / compute_seconds_total: atoms per second)',
      labelNames: ['route'],
      registers: [registry],
    }),
    atomsPerSecond: new Gauge({ name: 'acdc_atoms_per_second', help: 'Atoms per second of the last successful request', labelNames: ['route'], registers: [registry] }),
    cancelled: new Counter({ name: 'acdc_requests_cancelled_total', help: 'Requests whose client disconnected before the answer (their computation was cancelled)', labelNames: ['route'], registers: [registry] }),
    running: new Gauge({
      name: 'acdc_requests_running',
      help: 'Requests computing now',
      registers: [registry],
      collect() {
        this.set(state().running);
      },
    }),
    waiting: new Gauge({
      name: 'acdc_requests_waiting',
      help: 'Requests waiting for a computation slot',
      registers: [registry],
      collect() {
        this.set(state().waiting);
      },
    }),
  };
}
