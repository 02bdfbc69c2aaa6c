namespace BertSharp.Search;

/// <summary>Vector helpers shared by search, embeddings and serving.</summary>
public static class VectorMath
{
    /// <summary>Writes <paramref name="v"/> scaled to unit length into <paramref name="into"/> (a zero vector stays zero),
    /// the squared norm summed in double so the result does not depend on the order of the elements. False, with the
    /// position of the first, when an element is NaN or infinite.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static bool TryNormalize(ReadOnlySpan<float> v, Span<float> into, out int nonFinite)
    {
        double sum = 0;
        for (int i = 0; i < v.Length; i++)
        {
            float x = v[i];
            if (!float.IsFinite(x)) { nonFinite = i; return false; }
            sum += (double)x * x;
        }
        nonFinite = -1;
        if (sum == 0) { into[..v.Length].Clear(); return true; }
        double scale = 1 / Math.Sqrt(sum);
        for (int i = 0; i < v.Length; i++) into[i] = (float)(v[i] * scale);
        return true;
    }

    /// <summary><paramref name="v"/> scaled to unit length, as a new array (a zero vector stays zero, a vector with a
    /// NaN or infinite element is returned unchanged).</summary>
    public static float[] Normalized(ReadOnlySpan<float> v)
    {
        var into = new float[v.Length];
        if (!TryNormalize(v, into, out _)) v.CopyTo(into);
        return into;
    }
}
