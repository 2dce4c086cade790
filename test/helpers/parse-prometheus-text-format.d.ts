// Types for parse-prometheus-text-format, which ships none: its output is prom2json's shape, every
// number as the exposition's text.
declare module "parse-prometheus-text-format" {
  export interface PrometheusSample {
    value?: string;
    labels?: Record<string, string>;
    /** Histograms: each bucket's count by its `le` label. */
    buckets?: Record<string, string>;
    count?: string;
    sum?: string;
  }

  export interface PrometheusFamily {
    name: string;
    help: string;
    /** UNTYPED for samples without a TYPE line of their own name before them. */
    type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED";
    metrics: PrometheusSample[];
  }

  /** Throws on a line the format does not allow. */
  export default function parsePrometheusTextFormat(text: string): PrometheusFamily[];
}
