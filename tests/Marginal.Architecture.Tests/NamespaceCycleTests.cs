using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using System.Xml.Linq;

namespace Marginal.Architecture.Tests;

/// <summary>
/// No namespace of a src/ project depends on itself through others. The graph is read from the compiled assemblies
/// (base types, interfaces, signatures, locals and every type, method or field an IL instruction names), so an unused
/// <c>using</c> adds nothing and a fully qualified name cannot hide an edge. A namespace and its parent are two nodes.
/// </summary>
public sealed class NamespaceCycleTests
{
    // Cycles known and not yet broken, each to be removed here when it is: the namespaces, sorted, joined by " <-> ".
    // A cycle not listed fails, and so does one that grows (its set of namespaces changes).
    private static readonly HashSet<string> Known = new(StringComparer.Ordinal)
    {
        // The scenario loader reads the accelerator catalogue, whose entries are scenario configs; the performance model
        // reads both, and the ledger's measured throughput (Scenarios) feeds the optimiser's inputs. To be layered
        // Hardware -> Performance -> Scenarios -> Optimisation.
        "Marginal.Planner.Hardware <-> Marginal.Planner.Optimisation <-> Marginal.Planner.Performance <-> Marginal.Planner.Scenarios",
        // The scheduler reads LocalModelOptions from the root namespace, which holds LocalChatClient over the scheduler.
        "Marginal.Local <-> Marginal.Local.Scheduling",
        // OutputConstraint builds tool-call grammars from Tools, whose formats build JSON grammars.
        "Marginal.Local.Grammars <-> Marginal.Local.Tools",
    };

    public static TheoryData<string> Assemblies() => [.. ProjectReferenceTests.Allowed.Keys.Order(StringComparer.Ordinal)];

    [Theory]
    [MemberData(nameof(Assemblies))]
    public void Namespaces_FormNoCycle(string assembly)
    {
        var graph = NamespaceGraph.Read(Path.Combine(AppContext.BaseDirectory, AssemblyFile(assembly)));

        var cycles = graph.Cycles().Where(c => !Known.Contains(string.Join(" <-> ", c))).ToList();

        Assert.True(cycles.Count == 0, string.Join(Environment.NewLine, cycles.Select(graph.Describe)));
    }

    // The file a project builds: its AssemblyName (the CLI is "marginal"), else the project's name.
    private static string AssemblyFile(string project)
    {
        var csproj = XDocument.Load(Path.Combine(Repository.Root, "src", project, project + ".csproj"));
        return (csproj.Descendants("AssemblyName").FirstOrDefault()?.Value ?? project) + ".dll";
    }

    [Fact]
    public void Cycles_OfTwoNamespaces_AreFound()
    {
        var graph = new NamespaceGraph();
        graph.Add("A", "B", "A.X uses B.Y");
        graph.Add("B", "C", "B.Y uses C.Z");
        graph.Add("C", "B", "C.Z uses B.Y");

        Assert.Equal([["B", "C"]], graph.Cycles());
    }
}

/// <summary>Which namespace uses which, with one example of each edge (the types that make it).</summary>
internal sealed class NamespaceGraph
{
    private readonly SortedDictionary<string, SortedDictionary<string, string>> _edges = new(StringComparer.Ordinal);

    public void Add(string from, string to, string example)
    {
        if (from == to)
        {
            return;
        }
        if (!_edges.TryGetValue(from, out var targets))
        {
            _edges[from] = targets = new(StringComparer.Ordinal);
        }
        targets.TryAdd(to, example);
        _edges.TryAdd(to, new(StringComparer.Ordinal));
    }

    /// <summary>The strongly connected sets of two or more namespaces (Tarjan), each sorted.</summary>
    public List<List<string>> Cycles()
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var low = new Dictionary<string, int>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        var onStack = new HashSet<string>(StringComparer.Ordinal);
        var cycles = new List<List<string>>();
        foreach (var node in _edges.Keys)
        {
            if (!index.ContainsKey(node))
            {
                Visit(node);
            }
        }
        return [.. cycles.OrderBy(c => c[0], StringComparer.Ordinal)];

        void Visit(string node)
        {
            index[node] = low[node] = index.Count;
            stack.Push(node);
            onStack.Add(node);
            foreach (var next in _edges[node].Keys)
            {
                if (!index.TryGetValue(next, out var seen))
                {
                    Visit(next);
                    low[node] = Math.Min(low[node], low[next]);
                }
                else if (onStack.Contains(next))
                {
                    low[node] = Math.Min(low[node], seen);
                }
            }
            if (low[node] == index[node])
            {
                var set = new List<string>();
                string member;
                do
                {
                    member = stack.Pop();
                    onStack.Remove(member);
                    set.Add(member);
                }
                while (member != node);
                if (set.Count > 1)
                {
                    set.Sort(StringComparer.Ordinal);
                    cycles.Add(set);
                }
            }
        }
    }

    /// <summary>A cycle as its edges, each with the types that make it.</summary>
    public string Describe(List<string> cycle) =>
        $"{string.Join(" <-> ", cycle)}:{Environment.NewLine}" + string.Join(Environment.NewLine,
            from a in cycle from e in _edges[a] where cycle.Contains(e.Key) select $"  {a} -> {e.Key} ({e.Value})");

    /// <summary>The namespace graph of one assembly, from its metadata and IL.</summary>
    public static NamespaceGraph Read(string path)
    {
        using var pe = new PEReader(File.OpenRead(path));
        var reader = pe.GetMetadataReader();
        var graph = new NamespaceGraph();
        var types = new TypeCollector(reader);
        foreach (var handle in reader.TypeDefinitions)
        {
            var from = types.NamespaceOf(handle);
            if (!from.StartsWith("Marginal", StringComparison.Ordinal))
            {
                continue; // <Module>, compiler-emitted attributes and helpers
            }
            types.Used.Clear();
            types.Collect(handle, pe);
            foreach (var used in types.Used)
            {
                var to = types.NamespaceOf(used);
                if (to.StartsWith("Marginal", StringComparison.Ordinal))
                {
                    graph.Add(from, to, $"{types.NameOf(handle)} uses {types.NameOf(used)}");
                }
            }
        }
        return graph;
    }

    /// <summary>Gathers the type definitions of the same assembly that one type definition uses.</summary>
    private sealed class TypeCollector(MetadataReader reader) : ISignatureTypeProvider<bool, object?>
    {
        private static readonly Dictionary<short, OperandType> OpCodeOperands = typeof(OpCodes)
            .GetFields(BindingFlags.Public | BindingFlags.Static)
            .Select(f => (OpCode)f.GetValue(null)!)
            .ToDictionary(o => o.Value, o => o.OperandType);

        public HashSet<TypeDefinitionHandle> Used { get; } = [];

        public string NamespaceOf(TypeDefinitionHandle handle)
        {
            var type = reader.GetTypeDefinition(handle);
            while (type.GetDeclaringType() is { IsNil: false } outer)
            {
                type = reader.GetTypeDefinition(outer);
            }
            return reader.GetString(type.Namespace);
        }

        public string NameOf(TypeDefinitionHandle handle)
        {
            var type = reader.GetTypeDefinition(handle);
            var name = reader.GetString(type.Name);
            return type.GetDeclaringType() is { IsNil: false } outer ? $"{NameOf(outer)}+{name}" : $"{reader.GetString(type.Namespace)}.{name}";
        }

        public void Collect(TypeDefinitionHandle handle, PEReader pe)
        {
            var type = reader.GetTypeDefinition(handle);
            Entity(type.BaseType);
            foreach (var i in type.GetInterfaceImplementations())
            {
                Entity(reader.GetInterfaceImplementation(i).Interface);
            }
            Attributes(type.GetCustomAttributes());
            foreach (var f in type.GetFields())
            {
                var field = reader.GetFieldDefinition(f);
                field.DecodeSignature(this, null);
                Attributes(field.GetCustomAttributes());
            }
            foreach (var p in type.GetProperties())
            {
                reader.GetPropertyDefinition(p).DecodeSignature(this, null);
            }
            foreach (var m in type.GetMethods())
            {
                var method = reader.GetMethodDefinition(m);
                method.DecodeSignature(this, null);
                Attributes(method.GetCustomAttributes());
                if (method.RelativeVirtualAddress != 0)
                {
                    Body(pe.GetMethodBody(method.RelativeVirtualAddress));
                }
            }
        }

        private void Attributes(CustomAttributeHandleCollection attributes)
        {
            foreach (var a in attributes)
            {
                Entity(reader.GetCustomAttribute(a).Constructor);
            }
        }

        private void Body(MethodBodyBlock body)
        {
            if (!body.LocalSignature.IsNil)
            {
                reader.GetStandaloneSignature(body.LocalSignature).DecodeLocalSignature(this, null);
            }
            var il = body.GetILReader();
            while (il.RemainingBytes > 0)
            {
                short code = il.ReadByte();
                if (code == 0xFE)
                {
                    code = unchecked((short)(0xFE00 | il.ReadByte()));
                }
                switch (OpCodeOperands[code])
                {
                    case OperandType.InlineField or OperandType.InlineMethod or OperandType.InlineTok or OperandType.InlineType:
                        Entity(MetadataTokens.EntityHandle(il.ReadInt32()));
                        break;
                    case OperandType.InlineSwitch:
                        var targets = il.ReadInt32();
                        il.Offset += 4 * targets;
                        break;
                    case OperandType.InlineI8 or OperandType.InlineR:
                        il.Offset += 8;
                        break;
                    case OperandType.InlineBrTarget or OperandType.InlineI or OperandType.InlineSig or OperandType.InlineString or OperandType.ShortInlineR:
                        il.Offset += 4;
                        break;
                    case OperandType.InlineVar:
                        il.Offset += 2;
                        break;
                    case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar:
                        il.Offset += 1;
                        break;
                }
            }
        }

        private void Entity(EntityHandle handle)
        {
            if (handle.IsNil)
            {
                return;
            }
            switch (handle.Kind)
            {
                case HandleKind.TypeDefinition:
                    Used.Add((TypeDefinitionHandle)handle);
                    break;
                case HandleKind.TypeSpecification:
                    reader.GetTypeSpecification((TypeSpecificationHandle)handle).DecodeSignature(this, null);
                    break;
                case HandleKind.MethodDefinition:
                    Used.Add(reader.GetMethodDefinition((MethodDefinitionHandle)handle).GetDeclaringType());
                    break;
                case HandleKind.FieldDefinition:
                    Used.Add(reader.GetFieldDefinition((FieldDefinitionHandle)handle).GetDeclaringType());
                    break;
                case HandleKind.MemberReference:
                    Entity(reader.GetMemberReference((MemberReferenceHandle)handle).Parent);
                    break;
                case HandleKind.MethodSpecification:
                    var spec = reader.GetMethodSpecification((MethodSpecificationHandle)handle);
                    Entity(spec.Method);
                    spec.DecodeSignature(this, null);
                    break;
            }
        }

        public bool GetTypeFromDefinition(MetadataReader r, TypeDefinitionHandle handle, byte rawTypeKind) => Used.Add(handle);

        public bool GetTypeFromReference(MetadataReader r, TypeReferenceHandle handle, byte rawTypeKind) => false;

        public bool GetTypeFromSpecification(MetadataReader r, object? context, TypeSpecificationHandle handle, byte rawTypeKind)
        {
            reader.GetTypeSpecification(handle).DecodeSignature(this, context);
            return false;
        }

        public bool GetArrayType(bool elementType, ArrayShape shape) => false;

        public bool GetByReferenceType(bool elementType) => false;

        public bool GetFunctionPointerType(MethodSignature<bool> signature) => false;

        public bool GetGenericInstantiation(bool genericType, ImmutableArray<bool> typeArguments) => false;

        public bool GetGenericMethodParameter(object? genericContext, int index) => false;

        public bool GetGenericTypeParameter(object? genericContext, int index) => false;

        public bool GetModifiedType(bool modifier, bool unmodifiedType, bool isRequired) => false;

        public bool GetPinnedType(bool elementType) => false;

        public bool GetPointerType(bool elementType) => false;

        public bool GetPrimitiveType(PrimitiveTypeCode typeCode) => false;

        public bool GetSZArrayType(bool elementType) => false;
    }
}
