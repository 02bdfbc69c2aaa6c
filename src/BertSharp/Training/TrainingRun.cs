using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Reporting;
using TorchSharp;

namespace BertSharp.Training;

/// <summary>What a run reports while it trains: messages for the user, the start (the step it starts from and the
/// step it ends at) and each optimizer step. All optional; called on the training thread.</summary>
public sealed class TrainingEvents
{
    public Action<string>? Message { get; init; }
    public Action<long, long>? Start { get; init; }
    public Action<TrainerProgress>? Step { get; init; }
}

/// <summary>
/// A run folder from start to finish, for pre-training and fine-tuning alike: it holds the folder's lock while it
/// lives (a second run on the folder is refused), refuses to start over a run that is already there unless it
/// resumes it, reads the saved options of a resumed run, sets the seed, the thread count and the precision, writes
/// args.json, and trains (<see cref="Trainer"/>: checkpoints, best model, metrics, plots).
/// </summary>
public sealed class TrainingRun : IDisposable
{
    readonly RunLock runLock;

    TrainingRun(RunFolder folder, bool resume, JsonObject? savedArgs, RunLock runLock)
    {
        Folder = folder;
        Resume = resume;
        SavedArgs = savedArgs;
        this.runLock = runLock;
    }

    public RunFolder Folder { get; }
    public bool Resume { get; }
    /// <summary>The args.json of the run being resumed (null when starting).</summary>
    public JsonObject? SavedArgs { get; }

    /// <summary>
    /// Takes the run folder <paramref name="output"/> (creating it): a new run when <paramref name="resume"/> is
    /// false, refused if the folder already holds one; else the run there, whose args.json must exist.
    /// </summary>
    public static TrainingRun Open(string output, bool resume)
    {
        var folder = new RunFolder(output);
        var runLock = folder.Lock();   // before anything is written: a second run on this folder is refused here
        try
        {
            if (!resume && (Directory.Exists(folder.LastCheckpoint) || RunFolder.FindCheckpoint(folder.LastCheckpoint) != null))
                throw new BertSharpException($"{folder.Root}: already holds a run; continue it with resume, or choose another output") { Parameters = ["resume", "output"] };
            JsonObject? saved = null;
            if (resume)
            {
                if (!File.Exists(folder.ArgsFile))
                    throw new BertSharpException($"{folder.ArgsFile}: not found; resume needs the run folder of an earlier run") { Parameters = ["resume"] };
                try { saved = JsonNode.Parse(File.ReadAllText(folder.ArgsFile)) as JsonObject; }
                catch (JsonException e) { throw new BertSharpException($"{folder.ArgsFile}: invalid JSON: {e.Message.Split('\n')[0]}"); }
                saved ??= new JsonObject();
            }
            return new TrainingRun(folder, resume, saved, runLock);
        }
        catch
        {
            runLock.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sets the intra-op thread count (null: libtorch's own) and checks the compute precision the run's model is built
    /// with. A resumed run passes the values it was started with: the thread count changes the last bits of CPU
    /// products, so it is part of what makes a resumed run repeat the original.
    /// </summary>
    public static void Configure(int? threads, string precision)
    {
        if (threads is int t)
        {
            if (t < 1) throw new BertSharpException($"threads must be at least 1, got {t}") { Parameters = ["threads"] };
            torch.set_num_threads(t);
        }
        Modeling.ComputeOptions.ForPrecision(precision);
    }

    /// <summary>Writes args.json (atomically).</summary>
    public void WriteArgs(JsonObject args)
    {
        Directory.CreateDirectory(Folder.Root);
        AtomicFile.WriteAllText(Folder.ArgsFile, args.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Trains <paramref name="task"/> into this folder until its last step, or until
    /// <paramref name="cancel"/> fires (the state is then saved, and the result says it is not completed).</summary>
    public TrainingResult Train(ITrainingTask task, TrainingOptions options, IReadOnlyList<PlotSpec> plots, TrainingEvents? events = null, CancellationToken cancel = default)
    {
        var trainer = new Trainer(task, options with { OutputDir = Folder.Root, Resume = Resume }) { Plots = plots };
        if (events != null)
        {
            trainer.OnStart = step => events.Start?.Invoke(step, trainer.TotalSteps);
            trainer.OnStep = events.Step;
            trainer.OnMessage = events.Message;
        }
        return trainer.Train(cancel);
    }

    /// <summary>The optimizer steps <paramref name="task"/> trains for with <paramref name="options"/>.</summary>
    public static long TotalSteps(ITrainingTask task, TrainingOptions options) => new Trainer(task, options).TotalSteps;

    public void Dispose() => runLock.Dispose();
}
