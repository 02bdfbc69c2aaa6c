using System.Globalization;
using System.Text;
using BertSharp.Inference;

namespace BertSharp.Serving;

/// <summary>Request counts by route and status, and a latency histogram, rendered with the queue's figures in the
/// Prometheus text format (GET /metrics).</summary>
public sealed class ServingMetrics
{
    /// <summary>Upper bounds of the latency buckets, in seconds.</summary>
    public static readonly double[] LatencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    readonly object gate = new();
    readonly Dictionary<(string Route, int Status), long> requests = new();
    readonly Dictionary<string, long[]> latency = new();
    readonly Dictionary<string, double> latencySum = new();

    public void Record(string route, int status, TimeSpan elapsed)
    {
        double s = elapsed.TotalSeconds;
        lock (gate)
        {
            requests[(route, status)] = requests.GetValueOrDefault((route, status)) + 1;
            if (!latency.TryGetValue(route, out var counts)) latency[route] = counts = new long[LatencyBuckets.Length + 1];
            int b = Array.FindIndex(LatencyBuckets, u => s <= u);
            counts[b < 0 ? LatencyBuckets.Length : b]++;
            latencySum[route] = latencySum.GetValueOrDefault(route) + s;
        }
    }

    /// <summary>Requests answered with <paramref name="status"/> on <paramref name="route"/> so far.</summary>
    public long Count(string route, int status)
    {
        lock (gate) return requests.GetValueOrDefault((route, status));
    }

    public string Render(InferenceQueueStats queue)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        lock (gate)
        {
            sb.Append("# HELP bert_requests_total HTTP requests by route and status.\n# TYPE bert_requests_total counter\n");
            foreach (var ((route, status), n) in requests.OrderBy(kv => kv.Key.Route).ThenBy(kv => kv.Key.Status))
                sb.Append(inv, $"bert_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}\n");
            sb.Append("# HELP bert_errors_total HTTP requests answered with a 4xx or 5xx status.\n# TYPE bert_errors_total counter\n");
            sb.Append(inv, $"bert_errors_total {requests.Where(kv => kv.Key.Status >= 400).Sum(kv => kv.Value)}\n");
            sb.Append("# HELP bert_request_duration_seconds Time from the request's arrival to its answer.\n# TYPE bert_request_duration_seconds histogram\n");
            foreach (var (route, counts) in latency.OrderBy(kv => kv.Key))
            {
                long cumulative = 0;
                for (int i = 0; i < LatencyBuckets.Length; i++)
                {
                    cumulative += counts[i];
                    sb.Append(inv, $"bert_request_duration_seconds_bucket{{route=\"{route}\",le=\"{LatencyBuckets[i]}\"}} {cumulative}\n");
                }
                cumulative += counts[^1];
                sb.Append(inv, $"bert_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {cumulative}\n");
                sb.Append(inv, $"bert_request_duration_seconds_sum{{route=\"{route}\"}} {latencySum[route]}\n");
                sb.Append(inv, $"bert_request_duration_seconds_count{{route=\"{route}\"}} {cumulative}\n");
            }
        }
        sb.Append("# HELP bert_queue_inputs Inputs waiting for the model.\n# TYPE bert_queue_inputs gauge\n");
        sb.Append(inv, $"bert_queue_inputs {queue.QueuedInputs}\n");
        sb.Append("# HELP bert_inputs_total Inputs the model has run.\n# TYPE bert_inputs_total counter\n");
        sb.Append(inv, $"bert_inputs_total {queue.Inputs}\n");
        sb.Append("# HELP bert_batches_total Model calls (batches of one or more requests).\n# TYPE bert_batches_total counter\n");
        sb.Append(inv, $"bert_batches_total {queue.Batches}\n");
        sb.Append("# HELP bert_batch_failures_total Requests whose model call failed.\n# TYPE bert_batch_failures_total counter\n");
        sb.Append(inv, $"bert_batch_failures_total {queue.Failures}\n");
        sb.Append("# HELP bert_batch_size Inputs per model call.\n# TYPE bert_batch_size histogram\n");
        long total = 0, sum = 0;
        foreach (var le in new[] { 1, 2, 4, 8, 16, 32, 64, 128, 256 })
        {
            long upTo = queue.BatchSizes.Where(kv => kv.Key <= le).Sum(kv => kv.Value);
            sb.Append(inv, $"bert_batch_size_bucket{{le=\"{le}\"}} {upTo}\n");
        }
        foreach (var (size, n) in queue.BatchSizes) { total += n; sum += size * n; }
        sb.Append(inv, $"bert_batch_size_bucket{{le=\"+Inf\"}} {total}\nbert_batch_size_sum {sum}\nbert_batch_size_count {total}\n");
        return sb.ToString();
    }
}
