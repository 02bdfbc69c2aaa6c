namespace BertSharp.Modeling;

/// <summary>Parameter counts of a model grouped by part (embeddings, each encoder layer, pooler, head).</summary>
public static class ModelSummary
{
    public static string PartOf(string key)
    {
        if (key.StartsWith("bert.embeddings.")) return "embeddings";
        if (key.StartsWith("bert.encoder.layer."))
        {
            var rest = key["bert.encoder.layer.".Length..];
            return "encoder.layer." + rest[..rest.IndexOf('.')];
        }
        if (key.StartsWith("bert.pooler.")) return "pooler";
        if (key.StartsWith("cls.predictions.")) return "head: masked LM";
        if (key.StartsWith("cls.seq_relationship.")) return "head: next sentence";
        if (key.StartsWith("classifier.")) return "head: classifier";
        if (key.StartsWith("qa_outputs.")) return "head: question answering";
        return "other";
    }

    /// <summary>(part, parameter count) in module order, then the total.</summary>
    public static List<(string Part, long Count)> CountByPart(BertWithHead model)
    {
        var parts = new List<(string Part, long Count)>();
        foreach (var (name, p) in model.named_parameters())
        {
            var part = PartOf(name);
            if (parts.Count > 0 && parts[^1].Part == part) parts[^1] = (part, parts[^1].Count + p.numel());
            else parts.Add((part, p.numel()));
        }
        return parts;
    }
}
