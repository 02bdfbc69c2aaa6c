using System.Runtime.InteropServices;
using BertSharp.Reporting;
using BertSharp.Training;

namespace BertSharp.Cli.Commands;

/// <summary>Runs a training run with a progress bar and its messages on stderr, Ctrl+C / SIGTERM stopping it with
/// the state saved.</summary>
public static class TrainingConsole
{
    public static T Run<T>(CommandContext ctx, string label, Func<TrainingEvents, CancellationToken, T> run)
    {
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += onCancel;
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; cts.Cancel(); });
        ConsoleProgress? progress = null;
        try
        {
            var events = new TrainingEvents
            {
                Message = m => { if (progress is null) ctx.Err.WriteLine(m); else progress.WriteLine(m); },
                Start = (step, total) => progress = new ConsoleProgress(total, step, label: label, output: ctx.Err),
                Step = p => progress?.Update(p.Step, p.Loss, p.SequencesPerSecond),
            };
            return run(events, cts.Token);
        }
        finally
        {
            progress?.Dispose();
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>The line that says a run stopped before its last step and how to continue it.</summary>
    public static string NotFinished(string runFolder, string output) =>
        $"run folder: {runFolder} (not finished; continue with --resume --output {output})";
}
