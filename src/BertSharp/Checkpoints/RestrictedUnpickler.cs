using System.Buffers.Binary;
using System.Text;

namespace BertSharp.Checkpoints;

/// <summary>A Python tuple.</summary>
internal sealed class PickleTuple(object?[] items)
{
    public object?[] Items { get; } = items;
    public override string ToString() => $"a tuple of {Items.Length} item{(Items.Length == 1 ? "" : "s")}";
}

/// <summary>A Python list.</summary>
internal sealed class PickleList
{
    public List<object?> Items { get; } = [];
    public override string ToString() => $"a list of {Items.Count} item{(Items.Count == 1 ? "" : "s")}";
}

/// <summary>A Python dict (or OrderedDict): insertion-ordered, keys are strings, integers, booleans or None.</summary>
internal sealed class PickleDict
{
    private readonly List<KeyValuePair<object, object?>> _items = [];
    private readonly Dictionary<object, int> _index = [];
    private static readonly object NoneKey = new();

    public int Count => _items.Count;

    /// <summary>Entries in insertion order (a key set twice keeps its first position, as in Python).</summary>
    public IEnumerable<KeyValuePair<object?, object?>> Items =>
        _items.Select(kv => new KeyValuePair<object?, object?>(ReferenceEquals(kv.Key, NoneKey) ? null : kv.Key, kv.Value));

    /// <returns>False if the key is of a type this reader does not accept as a dict key.</returns>
    public bool Set(object? key, object? value)
    {
        object k = key ?? NoneKey;
        if (k is not (string or long or bool) && !ReferenceEquals(k, NoneKey)) return false;
        if (_index.TryGetValue(k, out int i)) _items[i] = new(k, value);
        else
        {
            _index[k] = _items.Count;
            _items.Add(new(k, value));
        }
        return true;
    }

    public override string ToString() => $"a dict of {Count} item{(Count == 1 ? "" : "s")}";
}

/// <summary>The pickle's bytes ended before its STOP opcode.</summary>
internal sealed class PickleTruncatedException(string message) : BertSharpException(message);

/// <summary>What the caller allows a pickle to do beyond building plain data.</summary>
internal interface IUnpicklerPolicy
{
    /// <summary>GLOBAL / STACK_GLOBAL: returns the object standing for module.name, or throws to refuse it.</summary>
    object ResolveGlobal(string module, string name);

    /// <summary>BINPERSID.</summary>
    object? PersistentLoad(object? pid);

    /// <summary>REDUCE: calls <paramref name="callable"/> (something <see cref="ResolveGlobal"/> returned, or not).</summary>
    object? Reduce(object? callable, PickleTuple args);

    /// <summary>BUILD: applies <paramref name="state"/> to <paramref name="target"/>.</summary>
    void Build(object? target, object? state);
}

/// <summary>
/// A small pickle interpreter that only builds data: None, bools, 64-bit integers, floats, strings,
/// tuples, lists and dicts. Everything that could run code (GLOBAL, REDUCE, BUILD, persistent ids) goes
/// through an <see cref="IUnpicklerPolicy"/>; opcodes outside the supported set (protocols 2 to 5 as written
/// by <c>torch.save</c>) are refused. It is iterative (no recursion), bounds the MARK nesting depth and the
/// number of values and memo entries it creates (so memory stays proportional to a small multiple of the
/// input), and checks every length against the bytes actually present before allocating anything.
/// </summary>
internal sealed class RestrictedUnpickler
{
    public const int MaxMarkDepth = 100;

    /// <summary>Values pushed on the stack over a whole pickle (a state dict needs about 10 per tensor).</summary>
    public const int MaxValues = 5_000_000;

    /// <summary>Memo entries (at most one per value).</summary>
    public const int MaxMemo = 5_000_000;

    private const int MaxGlobalLineBytes = 256;

    private readonly byte[] _data;
    private readonly string _path;
    private readonly string _what;
    private readonly IUnpicklerPolicy _policy;
    private readonly int _start;
    private int _pos;
    private int _opPos;
    private long _pushed;
    private List<object?> _stack = [];
    private readonly Stack<List<object?>> _metastack = new();
    private readonly Dictionary<long, object?> _memo = [];
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    /// <param name="data">The bytes holding the pickle.</param>
    /// <param name="start">Where the pickle starts in <paramref name="data"/>.</param>
    /// <param name="path">The checkpoint file, for messages.</param>
    /// <param name="what">The pickle's name inside the file, for messages (e.g. "archive/data.pkl").</param>
    /// <param name="policy">Decides what globals, persistent ids, REDUCE and BUILD mean.</param>
    private RestrictedUnpickler(byte[] data, int start, string path, string what, IUnpicklerPolicy policy)
    {
        _data = data;
        _start = _pos = start;
        _path = path;
        _what = what;
        _policy = policy;
    }

    /// <summary>Unpickles <paramref name="data"/>, which must hold exactly one pickle.</summary>
    public static object? Load(byte[] data, string path, string what, IUnpicklerPolicy policy)
    {
        var u = new RestrictedUnpickler(data, 0, path, what, policy);
        var value = u.Run();
        if (u._pos != data.Length) throw u.Malformed($"{data.Length - u._pos} bytes follow the STOP opcode");
        return value;
    }

    /// <summary>Unpickles the pickle starting at <paramref name="start"/>; <paramref name="end"/> is where it stopped.</summary>
    public static object? Load(byte[] data, int start, out int end, string path, string what, IUnpicklerPolicy policy)
    {
        var u = new RestrictedUnpickler(data, start, path, what, policy);
        var value = u.Run();
        end = u._pos;
        return value;
    }

    private object? Run()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw new PickleTruncatedException(Malformed("it ends without a STOP opcode (truncated?)").Message);
            _opPos = _pos;
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: // PROTO
                    {
                        byte v = ReadByte("PROTO");
                        if (v < 2 || v > 5) throw Malformed($"unsupported pickle protocol {v}");
                        break;
                    }
                case 0x95: // FRAME: a length hint only
                    ReadBytes(8, "FRAME");
                    break;
                case (byte)'.': // STOP
                    {
                        if (_metastack.Count != 0) throw Malformed("STOP with an unclosed MARK");
                        if (_stack.Count != 1) throw Malformed($"STOP with {_stack.Count} values on the stack (expected 1)");
                        return _stack[0];
                    }
                case (byte)'(': // MARK
                    if (_metastack.Count >= MaxMarkDepth) throw Malformed($"MARKs nested more than {MaxMarkDepth} deep");
                    _metastack.Push(_stack);
                    _stack = [];
                    break;
                case (byte)'0': // POP
                    Pop();
                    break;
                case (byte)'1': // POP_MARK
                    PopMark();
                    break;
                case (byte)'2': // DUP
                    Push(Peek());
                    break;
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4, "BININT"))); break;
                case (byte)'K': Push((long)ReadByte("BININT1")); break;
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2, "BININT2"))); break;
                case 0x8a: // LONG1
                    Push(ReadLong(ReadByte("LONG1"), "LONG1"));
                    break;
                case 0x8b: // LONG4
                    {
                        int n = BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4, "LONG4"));
                        if (n < 0) throw Malformed("LONG4 with a negative length");
                        Push(ReadLong(n, "LONG4"));
                        break;
                    }
                case (byte)'G': // BINFLOAT (big-endian)
                    Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8, "BINFLOAT")));
                    break;
                case (byte)'X': // BINUNICODE
                    Push(ReadString(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4, "BINUNICODE")), "BINUNICODE"));
                    break;
                case 0x8c: // SHORT_BINUNICODE
                    Push(ReadString(ReadByte("SHORT_BINUNICODE"), "SHORT_BINUNICODE"));
                    break;
                case 0x8d: // BINUNICODE8
                    Push(ReadString(BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8, "BINUNICODE8")), "BINUNICODE8"));
                    break;
                case (byte)')': Push(new PickleTuple([])); break; // EMPTY_TUPLE
                case (byte)'t': Push(new PickleTuple(PopMark().ToArray())); break; // TUPLE
                case 0x85: Push(new PickleTuple([Pop()])); break; // TUPLE1
                case 0x86: // TUPLE2
                    {
                        var b = Pop(); var a = Pop();
                        Push(new PickleTuple([a, b]));
                        break;
                    }
                case 0x87: // TUPLE3
                    {
                        var c = Pop(); var b = Pop(); var a = Pop();
                        Push(new PickleTuple([a, b, c]));
                        break;
                    }
                case (byte)']': Push(new PickleList()); break; // EMPTY_LIST
                case (byte)'l': // LIST
                    {
                        var list = new PickleList();
                        list.Items.AddRange(PopMark());
                        Push(list);
                        break;
                    }
                case (byte)'a': // APPEND
                    {
                        var v = Pop();
                        AsList(Peek(), "APPEND").Items.Add(v);
                        break;
                    }
                case (byte)'e': // APPENDS
                    {
                        var items = PopMark();
                        AsList(Peek(), "APPENDS").Items.AddRange(items);
                        break;
                    }
                case (byte)'}': Push(new PickleDict()); break; // EMPTY_DICT
                case (byte)'d': // DICT
                    {
                        var dict = new PickleDict();
                        SetItems(dict, PopMark(), "DICT");
                        Push(dict);
                        break;
                    }
                case (byte)'s': // SETITEM
                    {
                        var v = Pop(); var k = Pop();
                        SetItems(AsDict(Peek(), "SETITEM"), [k, v], "SETITEM");
                        break;
                    }
                case (byte)'u': // SETITEMS
                    {
                        var items = PopMark();
                        SetItems(AsDict(Peek(), "SETITEMS"), items, "SETITEMS");
                        break;
                    }
                case (byte)'q': MemoPut(ReadByte("BINPUT")); break; // BINPUT
                case (byte)'r': MemoPut(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4, "LONG_BINPUT"))); break;
                case 0x94: MemoPut(_memo.Count); break; // MEMOIZE
                case (byte)'h': Push(MemoGet(ReadByte("BINGET"))); break; // BINGET
                case (byte)'j': Push(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4, "LONG_BINGET")))); break;
                case (byte)'c': // GLOBAL
                    {
                        var module = ReadLine("GLOBAL");
                        var name = ReadLine("GLOBAL");
                        Push(_policy.ResolveGlobal(module, name));
                        break;
                    }
                case 0x93: // STACK_GLOBAL
                    {
                        var name = Pop(); var module = Pop();
                        if (module is not string m || name is not string n) throw Malformed("STACK_GLOBAL on values that are not strings");
                        Push(_policy.ResolveGlobal(m, n));
                        break;
                    }
                case (byte)'Q': Push(_policy.PersistentLoad(Pop())); break; // BINPERSID
                case (byte)'R': // REDUCE
                    {
                        var args = Pop();
                        var callable = Pop();
                        if (args is not PickleTuple t) throw Malformed($"REDUCE with arguments that are {Describe(args)}, not a tuple");
                        Push(_policy.Reduce(callable, t));
                        break;
                    }
                case (byte)'b': // BUILD
                    {
                        var state = Pop();
                        _policy.Build(Peek(), state);
                        break;
                    }
                default:
                    throw Malformed($"unsupported pickle opcode 0x{op:x2}" + (op is >= 0x20 and < 0x7f ? $" ('{(char)op}')" : ""));
            }
        }
    }

    /// <summary>A short description of a value for messages (never recursive).</summary>
    internal static string Describe(object? v) => v switch
    {
        null => "None",
        string s => $"the string {CheckpointIO.Quote(s)}",
        long l => $"the integer {l}",
        bool b => b ? "True" : "False",
        double d => $"the float {d.ToString(System.Globalization.CultureInfo.InvariantCulture)}",
        _ => v.ToString() ?? v.GetType().Name,
    };

    private void SetItems(PickleDict dict, List<object?> items, string op)
    {
        if (items.Count % 2 != 0) throw Malformed($"{op} with an odd number of values ({items.Count})");
        for (int i = 0; i < items.Count; i += 2)
        {
            if (!dict.Set(items[i], items[i + 1]))
                throw Malformed($"{op} with a dict key that is {Describe(items[i])} (only strings, integers, booleans and None are accepted)");
        }
    }

    private PickleList AsList(object? v, string op) =>
        v as PickleList ?? throw Malformed($"{op} on {Describe(v)}, not a list");

    private PickleDict AsDict(object? v, string op) =>
        v as PickleDict ?? throw Malformed($"{op} on {Describe(v)}, not a dict");

    private object? MemoGet(long key) =>
        _memo.TryGetValue(key, out var v) ? v : throw Malformed($"memo entry {key} is read before it is written");

    private void Push(object? v)
    {
        if (++_pushed > MaxValues) throw Malformed($"more than {MaxValues} values (a state dict needs far fewer)");
        _stack.Add(v);
    }

    private void MemoPut(long key)
    {
        var v = Peek();
        if (_memo.Count >= MaxMemo && !_memo.ContainsKey(key)) throw Malformed($"more than {MaxMemo} memo entries");
        _memo[key] = v;
    }

    private object? Pop()
    {
        if (_stack.Count == 0) throw Malformed("stack underflow");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object? Peek() => _stack.Count > 0 ? _stack[^1] : throw Malformed("stack underflow");

    private List<object?> PopMark()
    {
        if (_metastack.Count == 0) throw Malformed("an opcode needs a MARK but there is none");
        var items = _stack;
        _stack = _metastack.Pop();
        return items;
    }

    private byte ReadByte(string op)
    {
        if (_pos >= _data.Length) throw Truncated(op);
        return _data[_pos++];
    }

    private ReadOnlySpan<byte> ReadBytes(long n, string op)
    {
        if (n > _data.Length - _pos) throw Truncated(op);
        var span = _data.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return span;
    }

    private long ReadLong(int n, string op)
    {
        if (n > 8) throw Malformed($"{op} integer of {n} bytes does not fit in 64 bits");
        var bytes = ReadBytes(n, op);
        if (n == 0) return 0;
        // Little-endian two's complement, sign-extended from its top byte.
        long v = (sbyte)bytes[n - 1];
        for (int i = n - 2; i >= 0; i--) v = (v << 8) | bytes[i];
        return v;
    }

    private string ReadString(ulong n, string op)
    {
        if (n > (ulong)(_data.Length - _pos)) throw Truncated(op);
        var bytes = ReadBytes((long)n, op);
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException) { throw Malformed($"{op} string is not valid UTF-8"); }
    }

    private string ReadLine(string op)
    {
        int start = _pos;
        while (true)
        {
            if (_pos >= _data.Length) throw Truncated(op);
            if (_pos - start > MaxGlobalLineBytes) throw Malformed($"{op} name longer than {MaxGlobalLineBytes} bytes");
            byte b = _data[_pos++];
            if (b == (byte)'\n') break;
            if (b < 0x20 || b > 0x7e) throw Malformed($"{op} name contains byte 0x{b:x2}");
        }
        return Encoding.ASCII.GetString(_data, start, _pos - 1 - start);
    }

    private PickleTruncatedException Truncated(string op) =>
        new(Malformed($"it ends inside a {op} opcode (truncated?)").Message);

    private BertSharpException Malformed(string problem) =>
        CheckpointIO.Error(_path, $"{_what} is not a valid pickle: {problem} (at byte {_opPos - _start})");
}
