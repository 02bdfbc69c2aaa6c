using System.Text;

namespace BertSharp.Reporting;

/// <summary>
/// The reporting side of a training run. The trainer calls <see cref="LogTrain"/> for logged training steps
/// and <see cref="LogEval"/> for evaluations; each row goes to, in the run folder:
/// <list type="bullet">
/// <item><c>metrics.jsonl</c>: one JSON object per row, <c>{"step":..,"split":"train"|"eval","time":"..Z",...values}</c>;</item>
/// <item><c>metrics.csv</c>: the same rows under a header of step, split, time and the union of value columns in
/// order of first appearance (when a row brings a new column the file is rewritten from the logged rows);</item>
/// <item><c>events.out.tfevents.*</c>: TensorBoard scalars <c>train/&lt;name&gt;</c> and <c>eval/&lt;name&gt;</c>;</item>
/// <item><c>plots/*.png</c>: the <see cref="PlotSpec"/> figures, redrawn after each evaluation and on dispose.</item>
/// </list>
/// Every row is flushed as it is written, so a crash loses at most the row being written. Not thread-safe:
/// call it from the training loop.
/// </summary>
public sealed class RunLogger : IDisposable
{
    public const string JsonlFileName = "metrics.jsonl";
    public const string CsvFileName = "metrics.csv";
    public const string PlotsFolderName = "plots";

    static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    readonly List<MetricRow> _rows = [];
    readonly List<string> _columns = [];
    readonly HashSet<string> _columnSet = [];
    readonly IReadOnlyList<PlotSpec> _plots;
    readonly TextWriter? _warnings;
    readonly string _jsonlPath;
    readonly string _csvPath;
    StreamWriter _jsonl;
    StreamWriter _csv;
    readonly TensorBoardWriter? _tensorBoard;
    bool _plotsFailed;
    bool _disposed;

    /// <param name="runDirectory">The run folder (created if missing).</param>
    /// <param name="resumeStep">
    /// Null for a new run: metrics.jsonl/csv are started afresh and earlier events files and plots in the folder
    /// are deleted. For a run resumed from a checkpoint at this step: the rows logged up to this step are kept
    /// and later ones (logged after the checkpoint by the interrupted run) are dropped, then logging appends;
    /// TensorBoard gets a new events file that hides the dropped steps.
    /// </param>
    /// <param name="plots">Figures to draw; null means <see cref="PlotSpec.Pretraining"/>, empty means none.</param>
    /// <param name="tensorBoard">Whether to write TensorBoard event files.</param>
    /// <param name="warnings">Where a failure to draw plots is reported (once) instead of stopping training;
    /// null means standard error.</param>
    public RunLogger(string runDirectory, long? resumeStep = null, IReadOnlyList<PlotSpec>? plots = null,
        bool tensorBoard = true, TextWriter? warnings = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(runDirectory);
        RunDirectory = Path.GetFullPath(runDirectory);
        Directory.CreateDirectory(RunDirectory);
        _plots = plots ?? PlotSpec.Pretraining;
        _warnings = warnings;
        _jsonlPath = Path.Combine(RunDirectory, JsonlFileName);
        _csvPath = Path.Combine(RunDirectory, CsvFileName);
        ResumeStep = resumeStep;

        if (resumeStep is long step)
        {
            var kept = new StringBuilder();
            if (File.Exists(_jsonlPath))
            {
                foreach (string line in File.ReadLines(_jsonlPath, Encoding.UTF8))
                {
                    if (MetricsFormat.ParseJsonLine(line) is not MetricRow row || row.Step > step) continue;
                    Remember(row);
                    kept.Append(line.TrimEnd('\r')).Append('\n');
                }
            }
            WriteAtomically(_jsonlPath, kept.ToString());
        }
        else
        {
            File.WriteAllText(_jsonlPath, "");
            foreach (string old in Directory.EnumerateFiles(RunDirectory, "events.out.tfevents.*")) File.Delete(old);
            string plotsDir = Path.Combine(RunDirectory, PlotsFolderName);
            foreach (var spec in _plots)
            {
                string old = Path.Combine(plotsDir, spec.FileName);
                if (File.Exists(old)) File.Delete(old);
            }
        }
        _jsonl = OpenAppend(_jsonlPath);
        _csv = RewriteCsv();
        if (tensorBoard)
            _tensorBoard = new TensorBoardWriter(RunDirectory, resumeStep is long s ? s + 1 : null);
    }

    public string RunDirectory { get; }

    /// <summary>The step the run was resumed from, or null for a new run.</summary>
    public long? ResumeStep { get; }

    public string PlotsDirectory => Path.Combine(RunDirectory, PlotsFolderName);

    /// <summary>The current TensorBoard events file, or null when TensorBoard output is off.</summary>
    public string? TensorBoardFile => _tensorBoard?.FilePath;

    /// <summary>All rows of the run so far (on resume, including the kept earlier rows).</summary>
    public IReadOnlyList<MetricRow> Rows => _rows;

    /// <summary>The value columns of metrics.csv, in order of first appearance.</summary>
    public IReadOnlyList<string> Columns => _columns;

    /// <summary>Logs a training step (loss, mlm_loss, nsp_loss, learning_rate, seq_per_s, ...).</summary>
    public void LogTrain(long step, IReadOnlyDictionary<string, double> values) => Log(step, MetricRow.Train, values);

    /// <summary>Logs an evaluation (val_loss, val_mlm_accuracy, ...; or epoch, accuracy, f1, ...) and redraws the plots.</summary>
    public void LogEval(long step, IReadOnlyDictionary<string, double> values)
    {
        Log(step, MetricRow.Eval, values);
        TryRedrawPlots();
    }

    /// <summary>Draws every figure into <see cref="PlotsDirectory"/> now; throws on failure.
    /// Returns the files written (figures without data are skipped).</summary>
    public IReadOnlyList<string> RedrawPlots()
    {
        var written = new List<string>();
        foreach (var spec in _plots)
        {
            string path = Path.Combine(PlotsDirectory, spec.FileName);
            if (PlotRenderer.Render(spec, _rows, path)) written.Add(path);
        }
        return written;
    }

    /// <summary>Redraws the plots and closes the files.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            TryRedrawPlots();
        }
        finally
        {
            _jsonl.Dispose();
            _csv.Dispose();
            _tensorBoard?.Dispose();
        }
    }

    void Log(long step, string split, IReadOnlyDictionary<string, double> values)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(values);
        foreach (string name in values.Keys)
        {
            if (MetricRow.FixedColumns.Contains(name) || string.IsNullOrEmpty(name))
                throw new ArgumentException($"'{name}' cannot be a metric name (step, split and time are written by the logger).", nameof(values));
        }
        var row = new MetricRow(step, split, DateTimeOffset.UtcNow, new Dictionary<string, double>(values));

        _jsonl.Write(MetricsFormat.ToJsonLine(row));
        _jsonl.Write('\n');
        _jsonl.Flush();

        bool newColumn = Remember(row);
        if (newColumn)
        {
            _csv.Dispose();
            _csv = RewriteCsv();
        }
        else
        {
            _csv.Write(MetricsFormat.CsvLine(row, _columns));
            _csv.Write('\n');
            _csv.Flush();
        }

        _tensorBoard?.AddScalars(step, row.Values.Select(kv => KeyValuePair.Create($"{split}/{kv.Key}", kv.Value)), row.Time);
    }

    /// <summary>Adds the row to memory; true when it brought a column the csv header lacks.</summary>
    bool Remember(MetricRow row)
    {
        _rows.Add(row);
        bool added = false;
        foreach (string name in row.Values.Keys)
        {
            if (_columnSet.Add(name))
            {
                _columns.Add(name);
                added = true;
            }
        }
        return added;
    }

    /// <summary>Writes metrics.csv from the rows in memory (atomically) and opens it for appending.</summary>
    StreamWriter RewriteCsv()
    {
        var sb = new StringBuilder();
        sb.Append(MetricsFormat.CsvHeader(_columns)).Append('\n');
        foreach (var row in _rows) sb.Append(MetricsFormat.CsvLine(row, _columns)).Append('\n');
        WriteAtomically(_csvPath, sb.ToString());
        return OpenAppend(_csvPath);
    }

    void TryRedrawPlots()
    {
        if (_plotsFailed || _plots.Count == 0) return;
        try
        {
            RedrawPlots();
        }
        catch (Exception e)
        {
            // A missing native library or font problem must not end a long training run.
            _plotsFailed = true;
            (_warnings ?? Console.Error).WriteLine($"warning: plots in {PlotsDirectory} are not drawn any more: {e.GetType().Name}: {e.Message}");
        }
    }

    static StreamWriter OpenAppend(string path) =>
        new(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read), Utf8NoBom) { NewLine = "\n" };

    static void WriteAtomically(string path, string text)
    {
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, text, Utf8NoBom);
        File.Move(tmp, path, overwrite: true);
    }
}
