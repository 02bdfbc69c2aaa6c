using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace BertSharp.Search;

/// <summary>Memory an index reads its rows from: its own aligned native block (built in this process) or a
/// read-only mapping of its file (loaded). Freed on dispose, or by the finalizer if the index was never disposed.</summary>
internal abstract unsafe class VectorMemory : IDisposable
{
    public abstract byte* Pointer { get; }
    public abstract long Length { get; }

    protected abstract void Release();

    bool _released;

    public void Dispose()
    {
        if (_released) return;
        _released = true;
        Release();
        GC.SuppressFinalize(this);
    }

    ~VectorMemory()
    {
        if (!_released) { _released = true; Release(); }
    }
}

/// <summary>A 64-byte aligned native block (cache line and AVX-512 vector), grown by copying.</summary>
internal sealed unsafe class NativeVectorMemory : VectorMemory
{
    byte* _p;
    long _length;

    public NativeVectorMemory(long bytes)
    {
        _p = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 64), 64);
        _length = bytes;
    }

    public override byte* Pointer => _p;
    public override long Length => _length;

    public void Resize(long bytes)
    {
        _p = (byte*)NativeMemory.AlignedRealloc(_p, (nuint)Math.Max(bytes, 64), 64);
        _length = bytes;
    }

    protected override void Release()
    {
        NativeMemory.AlignedFree(_p);
        _p = null;
    }
}

/// <summary>A whole file mapped read-only: its pages are read on first touch and shared with the page cache,
/// so a large index loads without reading it, let alone copying it.</summary>
internal sealed unsafe class MappedVectorMemory : VectorMemory
{
    readonly MemoryMappedFile _file;
    readonly MemoryMappedViewAccessor _view;
    byte* _p;

    public MappedVectorMemory(FileStream stream)
    {
        Length = stream.Length;
        _file = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read,
            HandleInheritability.None, leaveOpen: false);
        try
        {
            _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _p = p + _view.PointerOffset;
        }
        catch
        {
            _view?.Dispose();
            _file.Dispose();
            throw;
        }
    }

    public override byte* Pointer => _p;
    public override long Length { get; }

    protected override void Release()
    {
        if (_p != null) _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _p = null;
        _view.Dispose();
        _file.Dispose();
    }
}
