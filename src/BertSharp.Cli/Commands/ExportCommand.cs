using System.CommandLine;
using System.Text.Json;
using BertSharp.Export;
using BertSharp.Tasks;

namespace BertSharp.Cli.Commands;

/// <summary>`bert export onnx MODEL --output DIR`: a model folder as an ONNX folder for ONNX Runtime.</summary>
public static class ExportCommand
{
    public static Command Build(CommandContext ctx)
    {
        var export = new Command("export", "Export a model folder to another format (onnx)");
        export.Add(BuildOnnx(ctx));
        return export;
    }

    static Command BuildOnnx(CommandContext ctx)
    {
        var model = new Argument<string>("MODEL") { Description = "A fine-tuned model (classify, similarity, tag, qa, embed) or a sentence-transformers model: " + ModelArgument.Help };
        var output = new Option<string>("--output", "-o") { Description = "The folder to write: model.onnx, onnx_config.json, the tokenizer files, config.json", Required = true };
        var optimize = new Option<bool>("--optimize") { Description = "Emit ONNX Runtime's fused operators (EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu); the file then runs in ONNX Runtime only" };
        var quantize = new Option<string?>("--quantize") { Description = "int8: dynamically quantized linear weights (int8 per output column, activations quantized at run time)" };
        var task = new Option<string?>("--task") { Description = "Export as this task instead of the folder's own: embed exports any BERT folder's encoder with its pooling (a plain folder: mean)" };
        var verify = new Option<bool>("--verify") { Description = "Run ONNX Runtime on the written file against BertSharp's forward pass and report the largest difference (float32: must be within 1e-4)" };
        var verifyData = new Option<string?>("--verify-data") { Description = "With --verify: a labelled file of the task (its dev file); both engines are scored on it (the accuracy change of --quantize int8)" };
        var format = new Option<string?>("--format") { Description = "Format of --verify-data (as bert evaluate: tsv, csv, jsonl, stsb, ptb, conll, squad); default by name" };
        var text = new Option<string?>("--text-column") { Description = "--verify-data column of the text" };
        var pair = new Option<string?>("--pair-column") { Description = "--verify-data column of the second text" };
        var label = new Option<string?>("--label-column") { Description = "--verify-data column of the label or score" };
        var noHeader = new Option<bool>("--no-header") { Description = "--verify-data is TSV/CSV without a header row" };
        var maxExamples = new Option<int?>("--max-examples") { Description = "Verify on the first N examples of --verify-data" };
        var json = new Option<bool>("--json") { Description = "Write onnx_config.json's content to stdout (messages go to stderr)" };
        var cmd = new Command("onnx", "Export a model folder to ONNX (opset 17, dynamic batch and sequence) for ONNX Runtime in C#, Python or JavaScript")
        { model, output, optimize, quantize, task, verify, verifyData, format, text, pair, label, noHeader, maxExamples, json };
        cmd.WithDetails("Inputs: input_ids, attention_mask, token_type_ids (int64 [batch, sequence]). Outputs by task: classify logits and probabilities " +
            "[batch, labels]; similarity logits [batch, 1]; tag logits [batch, sequence, tags]; qa start_logits and end_logits [batch, sequence]; " +
            "embed sentence_embedding [batch, dim] (the folder's pooling and normalisation baked in) and token_embeddings [batch, sequence, hidden].\n" +
            "onnx_config.json names the labels by id, the maximum length, the pooling; the tokenizer files are copied so BertSharp's (or any BERT) tokenizer reads the folder.\n" +
            "Unsupported (a one-line error): position_embedding_type other than absolute, hidden_act other than gelu, gelu_new, gelu_pytorch_tanh, relu, tanh; models of 2 GB or more.");
        cmd.SetAction(r =>
        {
            string dir = ModelArgument.Resolve(ctx, r.GetRequiredValue(model)), outDir = r.GetRequiredValue(output);
            var options = new OnnxExportOptions
            {
                Optimize = r.GetValue(optimize), Quantize = r.GetValue(quantize), Task = r.GetValue(task),
                Verify = r.GetValue(verify) || r.GetValue(verifyData) is not null, VerifyData = r.GetValue(verifyData), Threads = r.GetValue(Cli.Threads),
                VerifyDataOptions = new DataFileOptions
                {
                    Format = r.GetValue(format), TextColumn = r.GetValue(text), PairColumn = r.GetValue(pair), LabelColumn = r.GetValue(label),
                    NoHeader = r.GetValue(noHeader), MaxExamples = r.GetValue(maxExamples),
                },
            };
            var result = OnnxExport.Export(dir, outDir, options);
            var info = result.Info;
            foreach (var note in result.Notes) ctx.Err.WriteLine($"note: {note}");
            ctx.Err.WriteLine($"wrote {result.ModelPath} ({result.ModelBytes / 1e6:F1} MB; {info.Task}, {(info.Optimized ? "fused ONNX Runtime operators" : "standard ONNX operators")}" +
                $"{(info.Quantization is null ? "" : $", {info.Quantization} weights")}; outputs {string.Join(", ", info.Outputs.Select(o => o.Name))}) and {OnnxModelInfo.FileName}");
            if (info.Verification is { } v) ctx.Err.WriteLine(v.Describe());
            if (r.GetValue(json)) ctx.Out.WriteLine(info.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            if (info.Verification is { WithinTolerance: false } failed)
                throw new BertSharpException($"{result.ModelPath}: ONNX Runtime differs from BertSharp by {failed.MaxDifference:G3}, more than {failed.Tolerance:G1}; the export is wrong (please report it)");
            return 0;
        });
        return cmd;
    }
}
