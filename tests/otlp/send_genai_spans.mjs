// The OpenTelemetry JS SDK's OTLP/HTTP exporter (OTLP's JSON encoding) sending the spans of
// an instrumented application, for tests/otlp/test_opentelemetry_sdks.py: run by Node from
// frontend/ (whose node_modules hold the SDK), the spans to make in CALLS (JSON), the
// endpoint and key in OTLP_URL and INGEST_KEY. Prints each span made, then the export's
// result, a JSON line each; the exporter's warnings (partial success) go to stderr.
import { DiagConsoleLogger, DiagLogLevel, SpanStatusCode, diag } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';

diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.WARN);
const resource = resourceFromAttributes({ 'service.name': process.env.SERVICE, 'usage.org': 'acme' });
const tracer = new BasicTracerProvider({ resource }).getTracer('an LLM application');
const spans = JSON.parse(process.env.CALLS).map(({ name, attributes, failed }) => {
  const span = tracer.startSpan(name, { attributes });
  if (failed) span.setStatus({ code: SpanStatusCode.ERROR, message: '429 from the provider' });
  span.end();
  const [seconds, nanos] = span.endTime;
  const { traceId, spanId } = span.spanContext();
  console.log(JSON.stringify({ name, traceId, spanId, endNanos: `${BigInt(seconds) * 1_000_000_000n + BigInt(nanos)}` }));
  return span;
});
const exporter = new OTLPTraceExporter({
  url: process.env.OTLP_URL,
  headers: { Authorization: `Bearer ${process.env.INGEST_KEY}` },
});
exporter.export(spans, (result) => {
  console.log(JSON.stringify({ exported: result.code === 0, error: String(result.error ?? '') }));
  exporter.shutdown();
});
