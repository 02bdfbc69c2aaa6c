namespace BertSharp.Tasks.QuestionAnswering;

/// <summary>One candidate answer: the text cut from the context, its [Start, End) character span (null for the null
/// answer), its logits and its probability among the n-best (softmax of start + end logits).</summary>
public sealed record QaCandidate(string Text, int? Start, int? End, double StartLogit, double EndLogit, double Probability)
{
    public double Score => StartLogit + EndLogit;
}

/// <summary>
/// The answer to one question: <see cref="Text"/> (empty for "no answer"), its character span in the context
/// (null for no answer), its score (start + end logit), its probability among the n-best, and the n-best list.
/// For SQuAD 2.0 models, <see cref="NullScoreDiff"/> is null score − best span score (above the threshold: no answer).
/// </summary>
public sealed record QaAnswer(string Id, string Text, int? Start, int? End, double Score, double Probability,
    IReadOnlyList<QaCandidate> NBest, double? NullScoreDiff = null) : TaskPrediction
{
    public bool IsNoAnswer => Start is null;
}

/// <summary>Start and end logits of one window, over its sequence positions.</summary>
public sealed record QaLogits(float[] Start, float[] End);

/// <summary>
/// Google BERT's write_predictions: over all windows of a question, candidate spans pair the n_best_size highest
/// start and end logits, a span must lie in the context, start on a token for which its window has the most
/// context, end at or after its start and be at most max_answer_length tokens; the highest start + end logit wins,
/// texts cut straight from the original context by the tokens' character spans. SQuAD 2.0: the null score is the
/// smallest [CLS] start + end over the windows; "" is answered when null − best span exceeds the threshold.
/// </summary>
/// <remarks>Two deliberate differences from run_squad.py: the n_best_size candidates are the best positions among
/// the window's context tokens (run_squad.py takes them over all positions, question tokens included, and then
/// drops those), so no candidate slot is wasted; and when no span qualifies the answer is "" (run_squad.py writes
/// the placeholder "empty").</remarks>
public static class QaPostProcessing
{
    public static List<QaAnswer> Decode(QaFeatureSet set, IReadOnlyList<QaLogits> logits, QaSettings settings)
    {
        if (logits.Count != set.Features.Count)
            throw new ArgumentException($"{logits.Count} logits for {set.Features.Count} features", nameof(logits));
        var byExample = new List<int>[set.Examples.Count];
        for (int i = 0; i < byExample.Length; i++) byExample[i] = new List<int>();
        for (int f = 0; f < set.Features.Count; f++) byExample[set.Features[f].ExampleIndex].Add(f);
        var answers = new QaAnswer[set.Examples.Count];
        Parallel.For(0, set.Examples.Count, e =>
            answers[e] = DecodeOne(set.Examples[e].Id, set.Contexts[e], byExample[e].Select(f => (set.Features[f], logits[f])).ToList(), settings));
        return answers.ToList();
    }

    readonly record struct Prelim(int Feature, int StartPos, int EndPos, double StartLogit, double EndLogit);

    public static QaAnswer DecodeOne(string id, QaContext context, IReadOnlyList<(QaFeature Feature, QaLogits Logits)> windows, QaSettings s)
    {
        var prelim = new List<Prelim>();
        double nullScore = double.PositiveInfinity, nullStart = 0, nullEnd = 0;
        for (int w = 0; w < windows.Count; w++)
        {
            var (f, l) = windows[w];
            if (l.Start.Length < f.Length || l.End.Length < f.Length)
                throw new ArgumentException($"window {w} of question {id}: logits shorter than its {f.Length} tokens");
            if (s.Version2WithNegative && l.Start[0] + l.End[0] < nullScore)
            {
                nullScore = (double)l.Start[0] + l.End[0];
                nullStart = l.Start[0];
                nullEnd = l.End[0];
            }
            var starts = TopPositions(l.Start, f, s.NBestSize, requireMaxContext: true);
            var ends = TopPositions(l.End, f, s.NBestSize, requireMaxContext: false);
            foreach (int st in starts)
                foreach (int en in ends)
                {
                    if (en < st || en - st + 1 > s.MaxAnswerLength) continue;
                    prelim.Add(new Prelim(w, st, en, l.Start[st], l.End[en]));
                }
        }
        // Highest total first; ties keep window and position order (a stable sort, as Python's sorted).
        var ordered = prelim.OrderByDescending(p => p.StartLogit + p.EndLogit).ToList();
        var nbest = new List<(string Text, int? Start, int? End, double S, double E)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        bool nullAdded = false;
        foreach (var p in ordered)
        {
            if (nbest.Count >= s.NBestSize) break;
            // The null answer enters the ranking at its score, as run_squad.py's prelim [CLS] entry does.
            if (s.Version2WithNegative && !nullAdded && nullScore > p.StartLogit + p.EndLogit)
            {
                nbest.Add(("", null, null, nullStart, nullEnd));
                seen.Add("");
                nullAdded = true;
                if (nbest.Count >= s.NBestSize) break;
            }
            var f = windows[p.Feature].Feature;
            var first = context.Tokens[f.ContextToken(p.StartPos)];
            var last = context.Tokens[f.ContextToken(p.EndPos)];
            int start = first.Start, end = Math.Max(last.End, first.End);
            var text = context.Text[start..end];
            if (!seen.Add(text)) continue;
            nbest.Add((text, start, end, p.StartLogit, p.EndLogit));
        }
        if (s.Version2WithNegative && !nullAdded)
            nbest.Add(("", null, null, nullStart, nullEnd));
        if (nbest.Count == 0) nbest.Add(("", null, null, 0, 0));

        var probs = Softmax(nbest.Select(n => n.S + n.E).ToArray());
        var candidates = nbest.Select((n, i) => new QaCandidate(n.Text, n.Start, n.End, n.S, n.E, probs[i])).ToList();
        var bestSpan = candidates.FirstOrDefault(c => c.Start is not null);
        if (!s.Version2WithNegative)
        {
            var top = candidates[0];
            return new QaAnswer(id, top.Text, top.Start, top.End, top.Score, top.Probability, candidates);
        }
        var nullCandidate = candidates.First(c => c.Start is null);
        if (bestSpan is null)
            return new QaAnswer(id, "", null, null, nullCandidate.Score, nullCandidate.Probability, candidates, null);
        double diff = nullScore - bestSpan.Score;
        return diff > s.NullScoreDiffThreshold
            ? new QaAnswer(id, "", null, null, nullCandidate.Score, nullCandidate.Probability, candidates, diff)
            : new QaAnswer(id, bestSpan.Text, bestSpan.Start, bestSpan.End, bestSpan.Score, bestSpan.Probability, candidates, diff);
    }

    /// <summary>The <paramref name="n"/> context positions of the window with the highest logits (highest first).</summary>
    static List<int> TopPositions(float[] logits, QaFeature f, int n, bool requireMaxContext)
    {
        var positions = new List<int>(f.DocLength);
        for (int k = 0; k < f.DocLength; k++)
            if (!requireMaxContext || f.IsMaxContext[k]) positions.Add(f.ContextOffset + k);
        positions.Sort((a, b) => logits[b].CompareTo(logits[a]) is var c && c != 0 ? c : a.CompareTo(b));
        if (positions.Count > n) positions.RemoveRange(n, positions.Count - n);
        return positions;
    }

    static double[] Softmax(double[] scores)
    {
        double max = scores.Max();
        var e = scores.Select(x => Math.Exp(x - max)).ToArray();
        double sum = e.Sum();
        return e.Select(x => x / sum).ToArray();
    }
}
