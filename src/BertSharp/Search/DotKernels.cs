using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace BertSharp.Search;

/// <summary>
/// Dot products of index rows with queries, a tile of 4 rows by 1, 2 or 4 queries at a time: each row chunk is
/// loaded once for all the queries of the tile, each query chunk once for its 4 rows.
/// Every dot product is summed in the same order whatever tile, thread or batch computed it (chunk by chunk into one
/// vector accumulator with fused multiply-adds, then across the lanes, then the elements past the last whole chunk
/// one by one), so a row's score for a query is the same bits in a single search and in a batch, at any thread count.
/// The hot methods skip tiered compilation (AggressiveOptimization): a search calls its scan loop once, so it would
/// otherwise run unoptimised code, several times slower, for its first dozens of calls.
/// </summary>
internal static unsafe class DotKernels
{
    /// <summary>Which vectors the kernels use: 512-bit where the CPU has them (AVX-512), else <see cref="Vector{T}"/>
    /// (256-bit with AVX2, 128-bit with NEON).</summary>
    public enum Width { Vector512, VectorT }

    public static Width Best => Vector512.IsHardwareAccelerated ? Width.Vector512 : Width.VectorT;

    /// <summary>Queries per tile of a batch: as many as keep the tile's accumulators in vector registers (AVX-512 has
    /// twice AVX2's register file).</summary>
    public static int QueriesPerTile(Width width) => width == Width.Vector512 ? 4 : 2;

    /// <summary>Scores rows r0..r3 against <paramref name="queries"/>[0..count) (count 1, or <see cref="QueriesPerTile"/>):
    /// scores[q * 4 + r].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Tile(Width width, float* r0, float* r1, float* r2, float* r3, float** queries, int count, int dim, float* scores)
    {
        if (width == Width.Vector512)
        {
            if (count == 1) Rows4x1V512(r0, r1, r2, r3, queries[0], dim, scores);
            else Rows4x4V512(r0, r1, r2, r3, queries[0], queries[1], queries[2], queries[3], dim, scores);
        }
        else
        {
            if (count == 1) Rows4x1VT(r0, r1, r2, r3, queries[0], dim, scores);
            else Rows4x2VT(r0, r1, r2, r3, queries[0], queries[1], dim, scores);
        }
    }

    /// <summary>One dot product, summed in the order every tile sums it (for tests and single rows).</summary>
    public static float Dot(Width width, float* r, float* q, int dim)
    {
        float* s = stackalloc float[4];
        Tile(width, r, r, r, r, &q, 1, dim, s);
        return s[0];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Tail(float sum, float* r, float* q, int i, int dim)
    {
        for (; i < dim; i++) sum += r[i] * q[i];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Rows4x1V512(float* r0, float* r1, float* r2, float* r3, float* q, int dim, float* s)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i <= dim - 16; i += 16)
        {
            var y = Vector512.Load(q + i);
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + i), y, a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(r1 + i), y, a1);
            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(r2 + i), y, a2);
            a3 = Vector512.FusedMultiplyAdd(Vector512.Load(r3 + i), y, a3);
        }
        s[0] = Tail(Vector512.Sum(a0), r0, q, i, dim);
        s[1] = Tail(Vector512.Sum(a1), r1, q, i, dim);
        s[2] = Tail(Vector512.Sum(a2), r2, q, i, dim);
        s[3] = Tail(Vector512.Sum(a3), r3, q, i, dim);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Rows4x4V512(float* r0, float* r1, float* r2, float* r3, float* q0, float* q1, float* q2, float* q3, int dim, float* s)
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;   // aQR: query Q, row R
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        int i = 0;
        for (; i <= dim - 16; i += 16)
        {
            var x0 = Vector512.Load(r0 + i);
            var x1 = Vector512.Load(r1 + i);
            var x2 = Vector512.Load(r2 + i);
            var x3 = Vector512.Load(r3 + i);
            var y = Vector512.Load(q0 + i);
            a00 = Vector512.FusedMultiplyAdd(x0, y, a00); a01 = Vector512.FusedMultiplyAdd(x1, y, a01);
            a02 = Vector512.FusedMultiplyAdd(x2, y, a02); a03 = Vector512.FusedMultiplyAdd(x3, y, a03);
            y = Vector512.Load(q1 + i);
            a10 = Vector512.FusedMultiplyAdd(x0, y, a10); a11 = Vector512.FusedMultiplyAdd(x1, y, a11);
            a12 = Vector512.FusedMultiplyAdd(x2, y, a12); a13 = Vector512.FusedMultiplyAdd(x3, y, a13);
            y = Vector512.Load(q2 + i);
            a20 = Vector512.FusedMultiplyAdd(x0, y, a20); a21 = Vector512.FusedMultiplyAdd(x1, y, a21);
            a22 = Vector512.FusedMultiplyAdd(x2, y, a22); a23 = Vector512.FusedMultiplyAdd(x3, y, a23);
            y = Vector512.Load(q3 + i);
            a30 = Vector512.FusedMultiplyAdd(x0, y, a30); a31 = Vector512.FusedMultiplyAdd(x1, y, a31);
            a32 = Vector512.FusedMultiplyAdd(x2, y, a32); a33 = Vector512.FusedMultiplyAdd(x3, y, a33);
        }
        s[0] = Tail(Vector512.Sum(a00), r0, q0, i, dim); s[1] = Tail(Vector512.Sum(a01), r1, q0, i, dim);
        s[2] = Tail(Vector512.Sum(a02), r2, q0, i, dim); s[3] = Tail(Vector512.Sum(a03), r3, q0, i, dim);
        s[4] = Tail(Vector512.Sum(a10), r0, q1, i, dim); s[5] = Tail(Vector512.Sum(a11), r1, q1, i, dim);
        s[6] = Tail(Vector512.Sum(a12), r2, q1, i, dim); s[7] = Tail(Vector512.Sum(a13), r3, q1, i, dim);
        s[8] = Tail(Vector512.Sum(a20), r0, q2, i, dim); s[9] = Tail(Vector512.Sum(a21), r1, q2, i, dim);
        s[10] = Tail(Vector512.Sum(a22), r2, q2, i, dim); s[11] = Tail(Vector512.Sum(a23), r3, q2, i, dim);
        s[12] = Tail(Vector512.Sum(a30), r0, q3, i, dim); s[13] = Tail(Vector512.Sum(a31), r1, q3, i, dim);
        s[14] = Tail(Vector512.Sum(a32), r2, q3, i, dim); s[15] = Tail(Vector512.Sum(a33), r3, q3, i, dim);
    }

    static Vector<float> LoadT(float* p) => Unsafe.ReadUnaligned<Vector<float>>(p);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Rows4x1VT(float* r0, float* r1, float* r2, float* r3, float* q, int dim, float* s)
    {
        Vector<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int n = Vector<float>.Count, i = 0;
        for (; i <= dim - n; i += n)
        {
            var y = LoadT(q + i);
            a0 = Vector.FusedMultiplyAdd(LoadT(r0 + i), y, a0);
            a1 = Vector.FusedMultiplyAdd(LoadT(r1 + i), y, a1);
            a2 = Vector.FusedMultiplyAdd(LoadT(r2 + i), y, a2);
            a3 = Vector.FusedMultiplyAdd(LoadT(r3 + i), y, a3);
        }
        s[0] = Tail(Vector.Sum(a0), r0, q, i, dim);
        s[1] = Tail(Vector.Sum(a1), r1, q, i, dim);
        s[2] = Tail(Vector.Sum(a2), r2, q, i, dim);
        s[3] = Tail(Vector.Sum(a3), r3, q, i, dim);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Rows4x2VT(float* r0, float* r1, float* r2, float* r3, float* q0, float* q1, int dim, float* s)
    {
        Vector<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector<float> a10 = default, a11 = default, a12 = default, a13 = default;
        int n = Vector<float>.Count, i = 0;
        for (; i <= dim - n; i += n)
        {
            var x0 = LoadT(r0 + i);
            var x1 = LoadT(r1 + i);
            var x2 = LoadT(r2 + i);
            var x3 = LoadT(r3 + i);
            var y = LoadT(q0 + i);
            a00 = Vector.FusedMultiplyAdd(x0, y, a00); a01 = Vector.FusedMultiplyAdd(x1, y, a01);
            a02 = Vector.FusedMultiplyAdd(x2, y, a02); a03 = Vector.FusedMultiplyAdd(x3, y, a03);
            y = LoadT(q1 + i);
            a10 = Vector.FusedMultiplyAdd(x0, y, a10); a11 = Vector.FusedMultiplyAdd(x1, y, a11);
            a12 = Vector.FusedMultiplyAdd(x2, y, a12); a13 = Vector.FusedMultiplyAdd(x3, y, a13);
        }
        s[0] = Tail(Vector.Sum(a00), r0, q0, i, dim); s[1] = Tail(Vector.Sum(a01), r1, q0, i, dim);
        s[2] = Tail(Vector.Sum(a02), r2, q0, i, dim); s[3] = Tail(Vector.Sum(a03), r3, q0, i, dim);
        s[4] = Tail(Vector.Sum(a10), r0, q1, i, dim); s[5] = Tail(Vector.Sum(a11), r1, q1, i, dim);
        s[6] = Tail(Vector.Sum(a12), r2, q1, i, dim); s[7] = Tail(Vector.Sum(a13), r3, q1, i, dim);
    }
}
