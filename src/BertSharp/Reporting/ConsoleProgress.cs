using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace BertSharp.Reporting;

/// <summary>
/// Training progress on standard error: step/total, loss, sequences per second, elapsed time and ETA.
/// On a terminal it redraws one line in place (at most <see cref="RedrawInterval"/> apart); when the output is
/// not a terminal (redirected to a file, a pipe, CI) it prints a plain line every <c>plainInterval</c> instead.
/// <see cref="Update"/> is cheap when nothing is drawn (a timestamp read and a compare), so it can be called
/// every step. Not thread-safe: call it from the training loop.
/// </summary>
public sealed class ConsoleProgress : IDisposable
{
    /// <summary>Least time between two redraws of the in-place bar (4 per second).</summary>
    public static readonly TimeSpan RedrawInterval = TimeSpan.FromMilliseconds(250);

    readonly TextWriter _out;
    readonly Func<TimeSpan> _clock;
    readonly TimeSpan _interval;
    TimeSpan _start;
    long _startStep;
    readonly string _label;
    TimeSpan _nextDraw;
    long _step;
    long _drawnStep = -1;
    double? _loss;
    double? _sequencesPerSecond;
    int _lastWidth;
    int _statusWidth;
    bool _disposed;

    /// <param name="totalSteps">The step the run ends at.</param>
    /// <param name="startStep">The step the run starts from (non-zero when resumed); the ETA counts only the
    /// steps done since.</param>
    /// <param name="label">Shown before the bar, e.g. "pretrain" or "epoch 2/3"; may be null.</param>
    /// <param name="output">Where to write; null means standard error.</param>
    /// <param name="interactive">Whether to redraw in place; null means: yes when <paramref name="output"/> is
    /// null and standard error is a terminal.</param>
    /// <param name="plainInterval">Time between plain lines when not interactive; default 30 s.</param>
    public ConsoleProgress(long totalSteps, long startStep = 0, string? label = null, TextWriter? output = null,
        bool? interactive = null, TimeSpan? plainInterval = null)
        : this(totalSteps, startStep, label, output, interactive, plainInterval, clock: null) { }

    internal ConsoleProgress(long totalSteps, long startStep, string? label, TextWriter? output, bool? interactive,
        TimeSpan? plainInterval, Func<TimeSpan>? clock)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(totalSteps);
        TotalSteps = totalSteps;
        _startStep = _step = startStep;
        _label = label ?? "";
        _out = output ?? Console.Error;
        Interactive = interactive ?? (output is null && !Console.IsErrorRedirected);
        _interval = Interactive ? RedrawInterval : plainInterval ?? TimeSpan.FromSeconds(30);
        if (_interval < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(plainInterval));
        if (clock is null)
        {
            var sw = Stopwatch.StartNew();
            clock = () => sw.Elapsed;
        }
        _clock = clock;
        _start = _clock();
        _nextDraw = _start;   // the first update draws
    }

    /// <summary>Starts timing again from <paramref name="startStep"/>: a resumed run knows its step only after
    /// loading the checkpoint, and the ETA and elapsed time must count from there, not from step 0.</summary>
    public void Restart(long startStep)
    {
        _startStep = _step = startStep;
        _start = _nextDraw = _clock();
    }

    public long TotalSteps { get; set; }

    /// <summary>Whether the bar is redrawn in place (a terminal) rather than printed as plain lines.</summary>
    public bool Interactive { get; }

    /// <summary>Records the state after <paramref name="step"/>; draws when the interval has passed.
    /// A null loss or rate keeps the last one given.</summary>
    public void Update(long step, double? loss = null, double? sequencesPerSecond = null)
    {
        _step = step;
        if (loss is not null) _loss = loss;
        if (sequencesPerSecond is not null) _sequencesPerSecond = sequencesPerSecond;
        TimeSpan now = _clock();
        if (now < _nextDraw || _disposed) return;
        _nextDraw = now + _interval;
        Draw(now, final: false);
    }

    /// <summary>Prints a message on its own line (an evaluation result, a checkpoint note) without
    /// breaking the bar, which is redrawn below it.</summary>
    public void WriteLine(string message)
    {
        if (Interactive && _lastWidth > 0)
        {
            _out.Write('\r');
            _out.Write(new string(' ', _lastWidth));
            _out.Write('\r');
            _out.WriteLine(message);
            _lastWidth = 0;
            Draw(_clock(), final: false);
        }
        else
        {
            _out.WriteLine(message);
        }
        _out.Flush();
    }

    /// <summary>Draws the final state (if not shown yet) and ends the line.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_drawnStep != _step || Interactive) Draw(_clock(), final: true);
        if (Interactive) _out.WriteLine();
        _out.Flush();
    }

    void Draw(TimeSpan now, bool final)
    {
        _drawnStep = _step;
        if (!Interactive)
        {
            string plain = PlainStatus(now - _start);
            _out.WriteLine(_label.Length > 0 ? $"{_label} {plain}" : plain);
            _out.Flush();
            return;
        }
        string status = CompactStatus(now - _start);
        int width = (TerminalColumns ?? ConsoleColumns()) - 1;   // writing the last column makes some terminals wrap
        var line = new StringBuilder(width + 8);
        if (_label.Length > 0) line.Append(_label).Append(' ');
        // Sized for the longest status so far, so the bar does not jump as the numbers change length.
        _statusWidth = Math.Max(_statusWidth, status.Length);
        int barWidth = Math.Min(40, width - line.Length - _statusWidth - 3);
        if (barWidth >= 10)
        {
            double fraction = TotalSteps > 0 ? Math.Clamp((double)_step / TotalSteps, 0, 1) : 0;
            int filled = (int)(fraction * barWidth);
            line.Append('[').Append('=', filled);
            if (filled < barWidth) line.Append('>').Append(' ', barWidth - filled - 1);
            line.Append("] ");
        }
        line.Append(status);
        if (line.Length > width) line.Length = Math.Max(0, width);
        int written = line.Length;
        if (written < _lastWidth) line.Append(' ', _lastWidth - written);   // clear what the last draw left
        _out.Write('\r');
        _out.Write(line);
        _out.Flush();
        _lastWidth = written;
    }

    /// <summary>For the terminal, tqdm-like: "420/1000 42.0% | loss 2.3100 | 312.0 seq/s | 0:00:12&lt;0:00:17"
    /// (elapsed&lt;remaining).</summary>
    string CompactStatus(TimeSpan elapsed)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder(80);
        sb.Append(inv, $"{_step}/{TotalSteps}");
        if (TotalSteps > 0) sb.Append(inv, $" {100.0 * _step / TotalSteps:0.0}%");
        if (_loss is double loss) sb.Append(inv, $" | loss {loss:0.0000}");
        if (_sequencesPerSecond is double sps) sb.Append(inv, $" | {sps:0.0} seq/s");
        sb.Append(" | ").Append(Duration(elapsed));
        if (Eta(elapsed) is TimeSpan eta) sb.Append('<').Append(Duration(eta));
        else if (_step < TotalSteps) sb.Append("<?");
        return sb.ToString();
    }

    /// <summary>For logs: "step 420/1000 (42.0%) | loss 2.3100 | 312.0 seq/s | elapsed 0:00:12 | eta 0:00:17".</summary>
    string PlainStatus(TimeSpan elapsed)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder(96);
        sb.Append(inv, $"step {_step}/{TotalSteps}");
        if (TotalSteps > 0) sb.Append(inv, $" ({100.0 * _step / TotalSteps:0.0}%)");
        if (_loss is double loss) sb.Append(inv, $" | loss {loss:0.0000}");
        if (_sequencesPerSecond is double sps) sb.Append(inv, $" | {sps:0.0} seq/s");
        sb.Append(" | elapsed ").Append(Duration(elapsed));
        if (Eta(elapsed) is TimeSpan eta) sb.Append(" | eta ").Append(Duration(eta));
        else if (_step < TotalSteps) sb.Append(" | eta ?");
        return sb.ToString();
    }

    /// <summary>Time left at the mean rate since the start; null when done or not yet known.</summary>
    TimeSpan? Eta(TimeSpan elapsed)
    {
        long done = _step - _startStep, left = TotalSteps - _step;
        if (left <= 0 || done <= 0 || elapsed <= TimeSpan.Zero) return null;
        return TimeSpan.FromSeconds(elapsed.TotalSeconds / done * left);
    }

    /// <summary>h:mm:ss, or 1d02:03:04 beyond a day.</summary>
    internal static string Duration(TimeSpan t)
    {
        if (t < TimeSpan.Zero) t = TimeSpan.Zero;
        long s = (long)t.TotalSeconds;
        long days = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
        return days > 0
            ? string.Create(CultureInfo.InvariantCulture, $"{days}d{h:00}:{m:00}:{sec:00}")
            : string.Create(CultureInfo.InvariantCulture, $"{h}:{m:00}:{sec:00}");
    }

    /// <summary>Terminal width override for tests; null asks the console.</summary>
    internal int? TerminalColumns { get; set; }

    static int ConsoleColumns()
    {
        try
        {
            int w = Console.WindowWidth;
            return w > 20 ? w : 100;
        }
        catch (IOException) { return 100; }
        catch (PlatformNotSupportedException) { return 100; }
    }
}
