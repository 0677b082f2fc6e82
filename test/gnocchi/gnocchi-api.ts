// Gnocchi's REST API (v1) as the test reads it: basic auth `admin` (auth_mode = basic), one
// connection per request (the uwsgi http-socket answers `Connection: close`).

import http from 'node:http';

import axios, { type AxiosInstance } from 'axios';

import type { GnocchiPoint } from './measures.js';

export interface InstanceResource {
  id: string;
  type: string;
  user_id: string;
  project_id: string;
  display_name: string;
  flavor_id: string;
  flavor_name: string;
  host: string;
  image_ref: string | null;
  revision_start: string;
  metrics: Record<string, string>;
}

export interface Metric {
  id: string;
  name: string;
  unit: string | null;
  archive_policy: { name: string; definition: Array<{ granularity: string; timespan: string; points: number }>; aggregation_methods: string[] };
}

/** "0:00:01", "1:00:00", "1 day, 0:00:00" -> seconds */
export function durationSeconds(s: string): number {
  const m = /^(?:(\d+) days?, )?(\d+):(\d\d):(\d\d)$/.exec(s);
  if (!m) throw new Error(`not a Gnocchi duration: ${s}`);
  return Number(m[1] ?? 0) * 86400 + Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4]);
}

export class Gnocchi {
  private readonly http: AxiosInstance;

  constructor(readonly baseURL = 'http://127.0.0.1:8041') {
    this.http = axios.create({
      baseURL,
      auth: { username: 'admin', password: '' },
      httpAgent: new http.Agent({ keepAlive: false }),
      timeout: 30_000,
      validateStatus: () => true,
    });
  }

  private async get<T>(url: string, params: Record<string, string | number | boolean> = {}): Promise<T | null> {
    const r = await this.http.get<T>(url, { params });
    if (r.status === 404) return null;
    if (r.status !== 200) throw new Error(`GET ${this.baseURL}${url}: HTTP ${r.status} ${JSON.stringify(r.data)}`);
    return r.data;
  }

  instance(id: string): Promise<InstanceResource | null> {
    return this.get<InstanceResource>(`/v1/resource/instance/${id}`);
  }

  async instances(): Promise<InstanceResource[]> {
    return (await this.get<InstanceResource[]>('/v1/resource/instance')) ?? [];
  }

  async history(id: string): Promise<InstanceResource[]> {
    return (await this.get<InstanceResource[]>(`/v1/resource/instance/${id}/history`, { sort: 'revision_start:asc' })) ?? [];
  }

  metric(id: string): Promise<Metric | null> {
    return this.get<Metric>(`/v1/metric/${id}`);
  }

  /** refresh=true: the API aggregates what metricd has not processed yet, so no waiting on its schedule */
  async measures(metricId: string, granularity: number): Promise<GnocchiPoint[]> {
    return (await this.get<GnocchiPoint[]>(`/v1/metric/${metricId}/measures`, { refresh: true, granularity })) ?? [];
  }

  async deleteInstance(id: string): Promise<void> {
    const r = await this.http.delete(`/v1/resource/instance/${id}`);
    if (r.status !== 204) throw new Error(`DELETE /v1/resource/instance/${id}: HTTP ${r.status} ${JSON.stringify(r.data)}`);
  }
}
