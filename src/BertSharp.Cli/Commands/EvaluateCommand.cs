using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Data;
using BertSharp.Inference;
using BertSharp.Tasks;
using BertSharp.Tasks.QuestionAnswering;
using BertSharp.Tasks.Tagging;

namespace BertSharp.Cli.Commands;

/// <summary>`bert evaluate MODEL_DIR --data FILE`: scores a fine-tuned folder on a file of its task's formats.</summary>
public static class EvaluateCommand
{
    public static Command Build(CommandContext ctx)
    {
        var dir = new Argument<string>("MODEL_DIR") { Description = "A fine-tuned model folder (bert finetune's run folder, or an HF folder with a classification head), or a Hub id: name, org/name or org/name@revision" };
        var data = new Option<string>("--data") { Description = "Labelled data in one of the task's formats (see bert finetune classify|similarity|tag --help)", Required = true };
        var json = new Option<bool>("--json") { Description = "Write the metrics to stdout as JSON (the report goes to stderr)" };
        var predictions = new Option<string?>("--predictions") { Description = "Also write one JSON line per example (gold and predicted) to this file" };
        var format = new Option<string?>("--format") { Description = "Data format (classify: tsv, csv, jsonl; similarity: also stsb; tag: ptb, conll, jsonl); default by name" };
        var text = new Option<string?>("--text-column") { Description = "Column (or JSON field) of the text, or of the word list for JSONL tagging" };
        var pair = new Option<string?>("--pair-column") { Description = "Column of the second text" };
        var label = new Option<string?>("--label-column") { Description = "Column of the label/score, or the tag-list field for JSONL tagging" };
        var noHeader = new Option<bool>("--no-header") { Description = "TSV/CSV without a header row" };
        var tagColumn = new Option<int?>("--tag-column") { Description = "CoNLL: 0-based tag column (default: the last)" };
        var split = new Option<string>("--split") { Description = "For the treebank sample (built-in split by file): train, dev, test or all", DefaultValueFactory = _ => "test" };
        var scheme = new Option<string?>("--entity-scheme") { Description = "Tagging with chunk tags: seqeval strict mode in IOB1, IOB2 or IOBES (default: seqeval's default mode)" };
        var maxSeq = new Option<int?>("--max-seq-length") { Description = "Tokens per input (default: the length the model was fine-tuned with)" };
        var batch = new Option<int>("--batch-size") { Description = "Inputs per forward pass", DefaultValueFactory = _ => 128 };
        var maxExamples = new Option<int?>("--max-examples") { Description = "Score only the first N examples" };
        var cmd = new Command("evaluate", "Score a fine-tuned model folder on a labelled file of its task (the task comes from the folder's config.json)")
        { dir, data, json, predictions, format, text, pair, label, noHeader, tagColumn, split, scheme, maxSeq, batch, maxExamples };
        cmd.WithDetails("Classification: accuracy, macro-F1, per-class report and confusion matrix (multi-label: micro-F1, macro-F1, subset accuracy and per-label report at the model's threshold; the label column read as at fine-tuning); similarity: Pearson, Spearman; tagging: tag accuracy and, for chunk tags, entity precision/recall/F1; " +
            "question answering: a SQuAD v1.1/v2.0 file, the official EM/F1 (v2.0: HasAns/NoAns too).\n" +
            DataFormatHelp.Treebank + "\n" + TextLineReader.InputRule);
        // Question-answering folders: a SQuAD file, the official EM/F1.
        var qa = new QaCliHandlers.EvaluateOptions { Data = data, Json = json, Settings = new QaSettingOptions(maxSeqLength: maxSeq) };
        foreach (var opt in qa.All.Where(o => o != data && o != json && o != maxSeq)) cmd.Add(opt);
        cmd.SetAction(r =>
        {
            string modelDir = ModelArgument.Resolve(ctx, r.GetRequiredValue(dir));
            using var model = FineTunedModel.Load(modelDir, new LoadOptions { MaxSeqLength = r.GetValue(maxSeq), Precision = Cli.PrecisionOf(r), Device = r.GetValue(Cli.Device)! });
            foreach (var m in model.LoadReport?.Messages() ?? []) ctx.Err.WriteLine($"warning: {m}");
            model.BatchSize = r.GetValue(batch);
            if (model is TaggingModel t && r.GetValue(scheme) is { } s) t.StrictScheme = TaggingModel.ParseScheme(s);
            if (model is QuestionAnsweringModel qaModel) qaModel.Settings = qa.Settings.Apply(r, modelDir, qaModel.Config.MaxPositionEmbeddings);
            var options = new DataFileOptions
            {
                Format = r.GetValue(format), TextColumn = r.GetValue(text), PairColumn = r.GetValue(pair), LabelColumn = r.GetValue(label),
                NoHeader = r.GetValue(noHeader), TagColumn = r.GetValue(tagColumn), MaxExamples = r.GetValue(maxExamples),
                Split = ParseSplit(r.GetValue(split)!), SplitArticles = r.GetValue(qa.SplitArticles),
            };
            string? predictionsFile = r.GetValue(predictions);
            var score = model.EvaluateFile(r.GetRequiredValue(data), options, withPredictions: predictionsFile != null);
            if (score is QaScore squad)
            {
                if (r.GetValue(qa.Output) is string outDir)
                    foreach (var path in QaOutputFiles.Write(outDir, squad.Answers, squad.Scores)) ctx.Err.WriteLine($"wrote {path}");
                if (r.GetValue(json))
                {
                    var j = new JsonObject();
                    foreach (var (k, v) in squad.Scores.ToDictionary()) j[k] = v;
                    j["script"] = $"evaluate-v{squad.Scores.ScriptVersion}.py";
                    ctx.Out.WriteLine(j.ToJsonString(QaCliHandlers.JsonOut));
                }
                else ctx.Out.Write(score.Report);
                return 0;
            }
            if (predictionsFile != null) JsonLines.Write(predictionsFile, score.Predictions ?? []);
            if (r.GetValue(json))
            {
                ctx.Err.Write(score.Report);
                var doc = new JsonObject { ["task"] = model.TaskName, ["data"] = r.GetRequiredValue(data), ["metrics"] = JsonLines.Metrics(score.Metrics) };
                ctx.Out.WriteLine(doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            }
            else ctx.Out.Write(score.Report);
            return 0;
        });
        return cmd;
    }

    static DataSplit ParseSplit(string s) => s.ToLowerInvariant() switch
    {
        "train" => DataSplit.Train,
        "dev" => DataSplit.Dev,
        "test" => DataSplit.Test,
        "all" => DataSplit.All,
        _ => throw new BertSharpException($"--split '{s}': choose train, dev, test or all"),
    };
}
