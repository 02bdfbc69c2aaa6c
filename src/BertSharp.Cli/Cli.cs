using System.CommandLine;
using BertSharp.Cli.Commands;
using BertSharp.Modeling;
using BertSharp.Runtime;

namespace BertSharp.Cli;

/// <summary>The `bert` command: parses options and calls the library. Errors caused by input print one line
/// (the stack trace only with --verbose); exit code 1 for such errors and for I/O failures (disk full,
/// permission denied), 2 for bugs (always with their stack trace).</summary>
public static class Cli
{
    public static readonly Option<string> Device = new("--device") { Description = "Device to run on: cpu, cuda, cuda:N", DefaultValueFactory = _ => "cpu", Recursive = true };
    public static readonly Option<int?> Threads = new("--threads") { Description = "Intra-op CPU threads (default: libtorch's choice, one per core)", Recursive = true };
    public static readonly Option<long?> Seed = new("--seed") { Description = "Random seed for torch, data shuffling and masking", Recursive = true };
    public static readonly Option<string?> Precision = new("--precision") { Description = "Compute precision: fp32, bf16 (bfloat16 activations and matmuls; float32 weights, optimizer state, LayerNorm and losses), or auto (bf16 on a CPU with bfloat16 instructions, AVX512-BF16 or AMX, else fp32); default: auto for bert pretrain, fp32 for the other commands", Recursive = true };
    public static readonly Option<bool> Verbose = new("--verbose", "-v") { Description = "Print stack traces and more detail", Recursive = true };

    /// <summary>The dtype and kernels of the models a command builds, from --precision.</summary>
    public static ComputeOptions Compute(ParseResult r) => Compute(PrecisionOf(r));

    /// <summary>--precision as given ("auto" resolved), else fp32 (bert pretrain has its own default).</summary>
    public static string PrecisionOf(ParseResult r) => ComputeOptions.ResolvePrecision(r.GetValue(Precision) ?? "fp32");

    public static ComputeOptions Compute(string precision) => ComputeOptions.ForPrecision(precision);

    public static RootCommand Build(TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("BertSharp: BERT pre-training, fine-tuning and inference for .NET (HuggingFace-compatible model folders).");
        root.Add(Device);
        root.Add(Threads);
        root.Add(Seed);
        root.Add(Precision);
        root.Add(Verbose);
        var ctx = new CommandContext(stdout, stderr);
        root.Add(InfoCommand.Build(ctx));
        root.Add(TokenizeCommand.Build(ctx));
        root.Add(FillMaskCommand.Build(ctx));
        root.Add(VocabCommand.Build(ctx));
        root.Add(PretrainCommand.Build(ctx));
        root.Add(FinetuneCommand.Build(ctx));
        root.Add(EvaluateCommand.Build(ctx));
        root.Add(PredictCommand.Build(ctx));
        root.Add(EmbedCommand.Build(ctx));
        root.Add(SearchCommand.Build(ctx));
        root.Add(ServeCommand.Build(ctx));
        root.Add(BenchCommand.Build(ctx));
        root.Add(ExportCommand.Build(ctx));
        CommandHelp.Install(root);
        return root;
    }

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = Build(stdout, stderr);
        var parse = root.Parse(args);
        bool verbose = parse.GetValue(Verbose);
        try
        {
            if (parse.Errors.Count == 0 && parse.CommandResult.Command != root)
            {
                // The process is tuned before anything touches libtorch (ProcessTuning); not for --help or a parse
                // error, which need no libtorch. BERTSHARP_PROCESS_TUNING=off runs it as a library user's program runs.
                if (Environment.GetEnvironmentVariable("BERTSHARP_PROCESS_TUNING") != "off") ProcessTuning.Apply();
                TorchRuntime.Configure(parse.GetValue(Device), parse.GetValue(Threads), parse.GetValue(Seed));
                Compute(parse);   // a bad --precision is reported before the command starts
            }
            return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (BertSharpException e)
        {
            stderr.WriteLine($"error: {ParameterFlags.Message(e)}");
            if (verbose) stderr.WriteLine(e);
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The environment, not a bug: a full disk, a read-only or vanished folder. .NET's message names the file.
            stderr.WriteLine($"error: {e.Message.ReplaceLineEndings(" ").Trim()}");
            if (verbose) stderr.WriteLine(e);
            return 1;
        }
        catch (Exception e)
        {
            // A bug, by this command's own definition: its stack trace always goes with it, since a rare one may not
            // come back when run again with --verbose.
            stderr.WriteLine($"error: {e.GetType().Name}: {e.Message.Split('\n')[0]} (a bug in BertSharp; please report it with the stack trace below)");
            if (e.Data[BertSharp.Training.Trainer.ResumeNoteKey] is string note) stderr.WriteLine($"error: {note}");
            stderr.WriteLine(e);
            return 2;
        }
    }
}

/// <summary>Where commands write: stdout carries results (JSON only with --json), stderr carries messages.</summary>
public sealed record CommandContext(TextWriter Out, TextWriter Err);
