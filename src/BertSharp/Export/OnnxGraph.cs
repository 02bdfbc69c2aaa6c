using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace BertSharp.Export;

/// <summary>
/// An ONNX graph built node by node on ONNX's own protobuf classes (compiled from onnx.proto3): initializers hold the
/// weights (raw little-endian bytes), nodes name their outputs, and <see cref="ToModel"/> wraps the graph with its
/// operator-set imports. Tensor names are unique: a node's output is "prefix/op_N" unless named.
/// </summary>
internal sealed class OnnxGraph
{
    public const string MicrosoftDomain = "com.microsoft";

    readonly GraphProto graph = new();
    readonly HashSet<string> names = new(StringComparer.Ordinal);
    readonly Dictionary<string, string> constants = new(StringComparer.Ordinal);
    int counter;

    public OnnxGraph(string name) => graph.Name = name;

    /// <summary>The name of the part being built ("layer.3.attention"); generated names start with it.</summary>
    public string Scope { get; set; } = "";

    /// <summary>Whether a com.microsoft operator was used (the model then imports that domain).</summary>
    public bool UsesMicrosoftDomain { get; private set; }

    /// <summary>Bytes of initializer data so far (protobuf caps a message at 2 GiB).</summary>
    public long InitializerBytes { get; private set; }

    string Fresh(string hint)
    {
        string baseName = Scope.Length == 0 ? hint : $"{Scope}/{hint}";
        string name = baseName;
        while (!names.Add(name)) name = $"{baseName}_{++counter}";
        return name;
    }

    // ---- inputs and outputs ----

    /// <summary>A graph input or output type: <paramref name="dims"/> are symbolic names ("batch") or sizes.</summary>
    static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, IEnumerable<object> dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d) });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    public string Input(string name, TensorProto.Types.DataType type, params object[] dims)
    {
        if (!names.Add(name)) throw new InvalidOperationException($"tensor name '{name}' is taken");
        graph.Input.Add(ValueInfo(name, type, dims));
        return name;
    }

    /// <summary>Declares <paramref name="tensor"/> a graph output named <paramref name="name"/> (an Identity node
    /// renames it when the names differ).</summary>
    public void Output(string tensor, string name, TensorProto.Types.DataType type, params object[] dims)
    {
        if (tensor != name)
        {
            if (!names.Add(name)) throw new InvalidOperationException($"tensor name '{name}' is taken");
            graph.Node.Add(NewNode("Identity", [tensor], [name], "", []));
        }
        graph.Output.Add(ValueInfo(name, type, dims));
    }

    // ---- initializers ----

    /// <summary>An initializer is named by its hint (a checkpoint tensor name), made unique; no scope.</summary>
    string Unique(string hint)
    {
        string name = hint;
        while (!names.Add(name)) name = $"{hint}_{++counter}";
        return name;
    }

    string AddInitializer(string hint, TensorProto.Types.DataType type, ReadOnlySpan<byte> bytes, long[] dims)
    {
        var t = new TensorProto { Name = Unique(hint), DataType = (int)type, RawData = ByteString.CopyFrom(bytes) };
        t.Dims.AddRange(dims);
        graph.Initializer.Add(t);
        InitializerBytes += bytes.Length;
        return t.Name;
    }

    public string Floats(string hint, float[] values, params long[] dims) =>
        AddInitializer(hint, TensorProto.Types.DataType.Float, MemoryMarshal.AsBytes(values.AsSpan()), dims);

    public string Int8s(string hint, sbyte[] values, params long[] dims) =>
        AddInitializer(hint, TensorProto.Types.DataType.Int8, MemoryMarshal.AsBytes(values.AsSpan()), dims);

    /// <summary>An int64 constant (shapes, axes, indices), shared by every use of the same values.</summary>
    public string Int64s(long[] values, params long[] dims)
    {
        string key = $"i64[{string.Join(",", dims)}]:{string.Join(",", values)}";
        if (constants.TryGetValue(key, out var name)) return name;
        return constants[key] = AddInitializer("const_i64", TensorProto.Types.DataType.Int64, MemoryMarshal.AsBytes(values.AsSpan()), dims);
    }

    /// <summary>A float scalar constant, shared by every use of the same value.</summary>
    public string Scalar(float value)
    {
        string key = $"f32:{BitConverter.SingleToInt32Bits(value)}";
        if (constants.TryGetValue(key, out var name)) return name;
        return constants[key] = AddInitializer("const_f32", TensorProto.Types.DataType.Float, MemoryMarshal.AsBytes(new[] { value }.AsSpan()), []);
    }

    // ---- nodes ----

    static NodeProto NewNode(string op, IEnumerable<string> inputs, IEnumerable<string> outputs, string domain, (string Name, object Value)[] attributes)
    {
        var node = new NodeProto { OpType = op, Domain = domain };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        foreach (var (name, value) in attributes) node.Attribute.Add(Attribute(name, value));
        return node;
    }

    static AttributeProto Attribute(string name, object value)
    {
        var a = new AttributeProto { Name = name };
        switch (value)
        {
            case int i: a.Type = AttributeProto.Types.AttributeType.Int; a.I = i; break;
            case long l: a.Type = AttributeProto.Types.AttributeType.Int; a.I = l; break;
            case float f: a.Type = AttributeProto.Types.AttributeType.Float; a.F = f; break;
            case double d: a.Type = AttributeProto.Types.AttributeType.Float; a.F = (float)d; break;
            case string s: a.Type = AttributeProto.Types.AttributeType.String; a.S = ByteString.CopyFromUtf8(s); break;
            case long[] ls: a.Type = AttributeProto.Types.AttributeType.Ints; a.Ints.AddRange(ls); break;
            default: throw new ArgumentException($"attribute {name}: unsupported value type {value.GetType().Name}");
        }
        return a;
    }

    /// <summary>Adds a node with one output; returns the output's name (<paramref name="output"/>, else generated).
    /// An empty input name leaves an optional input out.</summary>
    public string Node(string op, string[] inputs, string? output = null, string domain = "", params (string Name, object Value)[] attributes)
    {
        if (output is not null && !names.Add(output)) throw new InvalidOperationException($"tensor name '{output}' is taken");
        return Add(op, inputs, [output ?? Fresh(op)], domain, attributes)[0];
    }

    /// <summary>Adds a node with several outputs, their names generated from <paramref name="hints"/>.</summary>
    public string[] Nodes(string op, string[] inputs, string[] hints, string domain = "", params (string Name, object Value)[] attributes) =>
        Add(op, inputs, hints.Select(Fresh).ToArray(), domain, attributes);

    string[] Add(string op, string[] inputs, string[] outputs, string domain, (string Name, object Value)[] attributes)
    {
        if (domain == MicrosoftDomain) UsesMicrosoftDomain = true;
        graph.Node.Add(NewNode(op, inputs, outputs, domain, attributes));
        return outputs;
    }

    /// <summary>The model: this graph with ONNX opset <paramref name="opset"/> (and com.microsoft 1 when used).</summary>
    public ModelProto ToModel(int opset, long irVersion, string producer, string producerVersion, string docString, IEnumerable<KeyValuePair<string, string>> metadata)
    {
        var model = new ModelProto
        {
            IrVersion = irVersion,
            ProducerName = producer,
            ProducerVersion = producerVersion,
            DocString = docString,
            Graph = graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        if (UsesMicrosoftDomain) model.OpsetImport.Add(new OperatorSetIdProto { Domain = MicrosoftDomain, Version = 1 });
        foreach (var (k, v) in metadata) model.MetadataProps.Add(new StringStringEntryProto { Key = k, Value = v });
        return model;
    }
}
