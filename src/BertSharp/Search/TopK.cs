using System.Runtime.CompilerServices;

namespace BertSharp.Search;

/// <summary>
/// The best <c>k</c> (row, score) pairs offered so far, in a bounded heap whose root is the worst kept. The order is
/// total: a higher score is better, and of equal scores the lower row; so the result does not depend on the order
/// the rows were offered in, nor on how they were split between threads.
/// </summary>
internal sealed class TopK
{
    readonly float[] _scores;
    readonly int[] _rows;
    int _count;
    float _floor = float.NegativeInfinity;   // the root's score once full: anything lower is refused at once

    public TopK(int k)
    {
        _scores = new float[k];
        _rows = new int[k];
    }

    public int Count => _count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Offer(float score, int row)
    {
        if (score >= _floor) OfferSlow(score, row);
    }

    static bool Worse(float s1, int r1, float s2, int r2) => s1 < s2 || (s1 == s2 && r1 > r2);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void OfferSlow(float score, int row)
    {
        int k = _scores.Length;
        if (_count < k)
        {
            int i = _count++;
            while (i > 0)
            {
                int parent = (i - 1) / 2;
                if (!Worse(score, row, _scores[parent], _rows[parent])) break;
                _scores[i] = _scores[parent];
                _rows[i] = _rows[parent];
                i = parent;
            }
            _scores[i] = score;
            _rows[i] = row;
            if (_count == k) _floor = _scores[0];
            return;
        }
        if (!Worse(_scores[0], _rows[0], score, row)) return;
        int j = 0;
        while (true)
        {
            int child = 2 * j + 1;
            if (child >= k) break;
            if (child + 1 < k && Worse(_scores[child + 1], _rows[child + 1], _scores[child], _rows[child])) child++;
            if (!Worse(_scores[child], _rows[child], score, row)) break;
            _scores[j] = _scores[child];
            _rows[j] = _rows[child];
            j = child;
        }
        _scores[j] = score;
        _rows[j] = row;
        _floor = _scores[0];
    }

    /// <summary>The best <paramref name="k"/> of all that the heaps kept, best first.</summary>
    public static (int Row, float Score)[] Merge(IEnumerable<TopK> heaps, int k)
    {
        var all = new List<(int Row, float Score)>();
        foreach (var h in heaps)
            for (int i = 0; i < h._count; i++) all.Add((h._rows[i], h._scores[i]));
        all.Sort((a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Row.CompareTo(b.Row));
        if (all.Count > k) all.RemoveRange(k, all.Count - k);
        return all.ToArray();
    }
}
