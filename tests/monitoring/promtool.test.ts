import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import {
  deployConfig,
  HAS_PROMETHEUS,
  PROMETHEUS_DIR,
  PROMTOOL,
  promtool,
  writeConfig,
} from '../support/prometheus.js'

/**
 * deploy/prometheus/ through Debian's promtool: the configuration and the alert rules load, and
 * every alert passes its unit tests (alerts.test.yml: series in, alerts expected out).
 */

type Obj = Record<string, any>

const readYaml = (name: string) => parse(readFileSync(join(PROMETHEUS_DIR, name), 'utf8')) as Obj

describe.skipIf(!HAS_PROMETHEUS)(`promtool (${PROMTOOL}; skipped where it is missing)`, () => {
  it('every alert in alerts.yml has unit tests that see it fire and see it silent', () => {
    const alerts = (readYaml('alerts.yml').groups as Obj[]).flatMap((g) =>
      (g.rules as Obj[]).map((r) => r.alert as string),
    )
    const checks = (readYaml('alerts.test.yml').tests as Obj[]).flatMap(
      (t) => t.alert_rule_test as Obj[],
    )
    expect(alerts.length).toBeGreaterThan(0)
    for (const alert of alerts) {
      const mine = checks.filter((c) => c.alertname === alert)
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} is seen firing`,
      ).toBe(true)
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert} is seen silent`,
      ).toBe(true)
    }
  })

  it('promtool test rules: alerts.test.yml passes', async () => {
    const run = await promtool('test', 'rules', 'alerts.test.yml')
    expect(run.code, run.output).toBe(0)
    expect(run.output).toContain('SUCCESS')
  })

  it('promtool check rules: alerts.yml loads', async () => {
    const run = await promtool('check', 'rules', 'alerts.yml')
    expect(run.code, run.output).toBe(0)
    const rules = (readYaml('alerts.yml').groups as Obj[]).flatMap((g) => g.rules)
    expect(run.output).toContain(`SUCCESS: ${rules.length} rules found`)
  })

  it('promtool check config: prometheus.yml loads, Kubernetes discovery aside where the build lacks it', async () => {
    // Debian's build has no Kubernetes service discovery: the only errors it may report on the
    // file as shipped are those fields. The same file without them must then load in full (its
    // relabelling, static job and rule files).
    const shipped = await promtool('check', 'config', 'prometheus.yml')
    if (shipped.code !== 0) {
      const errors = shipped.output.split('\n').filter((l) => /^\s*line \d+:/.test(l))
      expect(errors.length, shipped.output).toBeGreaterThan(0)
      for (const e of errors) expect(e).toMatch(/field kubernetes_sd_configs not found/)
    }
    const config = deployConfig()
    for (const job of config.scrape_configs as Obj[]) delete job.kubernetes_sd_configs
    config.rule_files = (config.rule_files as string[]).map((f) => join(PROMETHEUS_DIR, f))
    const file = await writeConfig(config)
    const run = await promtool('check', 'config', file)
    expect(run.code, run.output).toBe(0)
    expect(run.output).toContain('SUCCESS: 1 rule files found')
  })
})
