using BertSharp.Export;
using BertSharp.Tasks;
using BertSharp.Training;
using static TorchSharp.torch;

namespace BertSharp.Inference;

/// <summary>
/// The forward pass of a loaded model run by ONNX Runtime instead of libtorch (<see cref="LoadOptions.Engine"/>
/// "onnxruntime"): the model is exported with <c>bert export onnx</c>'s plain graph into a temporary folder when it
/// is loaded, ONNX Runtime fuses it as it loads it (ORT_ENABLE_ALL), and each batch's padded inputs go through it;
/// tokenization, batching and post-processing stay BertSharp's. The plain graph, not <c>--optimize</c>'s pre-fused one:
/// ONNX Runtime's own fusion of it runs faster on the CPU (docs/SERVING.md). At batch 1 libtorch's fixed cost per operator call dominates, which ONNX Runtime avoids
/// (docs/SERVING.md). For classify, similarity, tag and embed models.
/// </summary>
public sealed class InferenceEngine : IDisposable
{
    public const string Torch = "torch";
    public const string OnnxRuntime = "onnxruntime";
    /// <summary>ONNX Runtime where it runs the model (float32 on the CPU, not question answering), else libtorch.</summary>
    public const string Auto = "auto";

    readonly OnnxModelRunner runner;
    readonly string folder;

    InferenceEngine(OnnxModelRunner runner, string folder)
    {
        this.runner = runner;
        this.folder = folder;
    }

    /// <summary>Attaches an ONNX Runtime engine to <paramref name="model"/> when <paramref name="engine"/> asks for one.</summary>
    internal static void Attach(TaskModel model, string engine, string? sourceDir)
    {
        switch (engine)
        {
            case Torch: return;
            case OnnxRuntime:
                if (Refusal(model) is { } refusal) throw refusal;
                break;
            case Auto:
                if (Refusal(model) is not null) return;
                break;
            default: throw new BertSharpException($"engine '{engine}': choose {Torch}, {OnnxRuntime} or {Auto}") { Parameters = ["engine"] };
        }
        var dir = Path.Combine(Path.GetTempPath(), $"bertsharp-onnx-{Guid.NewGuid():N}");
        try
        {
            var result = OnnxExport.Export(model, dir, new OnnxExportOptions(), sourceDir);
            model.Engine = new InferenceEngine(new OnnxModelRunner(result.ModelPath, get_num_threads()), dir);
        }
        catch
        {
            TryDelete(dir);
            throw;
        }
    }

    /// <summary>Why ONNX Runtime cannot run <paramref name="model"/> (the error "onnxruntime" raises; "auto" then keeps
    /// libtorch), or null when it can.</summary>
    static BertSharpException? Refusal(TaskModel model)
    {
        if (model is Tasks.QuestionAnswering.QuestionAnsweringModel)
            return new BertSharpException($"engine {OnnxRuntime} runs classify, similarity, tag and embed models; question answering runs in libtorch") { Parameters = ["engine"] };
        if (model.Model.Compute.Dtype != ScalarType.Float32)
            return new BertSharpException($"engine {OnnxRuntime} computes in float32; precision {model.Model.Compute.Precision} is for the {Torch} engine") { Parameters = ["engine", "precision"] };
        if (model.Device.type != TorchSharp.DeviceType.CPU)
            return new BertSharpException($"engine {OnnxRuntime} runs on the CPU; use the {Torch} engine on {model.Device}") { Parameters = ["engine", "device"] };
        return null;
    }

    /// <summary>One output of the graph for a padded batch (input_ids, token_type_ids, attention_mask), as a float32 CPU tensor.</summary>
    internal Tensor Output(Batch batch, string name) => Output(batch.Tensors, name);

    internal Tensor Output(IReadOnlyDictionary<string, Tensor> inputs, string name)
    {
        var ids = inputs["input_ids"];
        int B = (int)ids.shape[0], L = (int)ids.shape[1];
        long[] Data(string key) { using var t = inputs[key].cpu().to(ScalarType.Int64); return t.data<long>().ToArray(); }
        var outputs = runner.Run(Data("input_ids"), Data("attention_mask"), Data("token_type_ids"), B, L, [name]);
        var (data, shape) = outputs[name];
        return tensor(data, shape);
    }

    /// <summary>One output for token sequences ([CLS] … [SEP], token type 0) padded to the longest: its rows and width,
    /// with no libtorch call on the way.</summary>
    internal (float[] Data, int Width) Output(IReadOnlyList<int[]> sequences, int padId, string name)
    {
        var (data, shape) = runner.Run(sequences, null, padId, [name])[name];
        return (data, (int)shape[^1]);
    }

    static void TryDelete(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    public void Dispose()
    {
        runner.Dispose();
        TryDelete(folder);
    }
}
