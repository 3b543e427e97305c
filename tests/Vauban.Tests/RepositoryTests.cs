// The repository as committed: a merge left half-done (conflict markers) must not land, in code or in the documents
// (stop 26 shipped a README whose configuration table still held both sides of a merge).
namespace Vauban.Tests;

public sealed class RepositoryTests
{
    private static readonly string[] Folders = ["src", "tests", "bench", "docs", ".ci"];
    private static readonly string[] Extensions = [".cs", ".md", ".cshtml", ".json", ".csproj", ".props", ".sh", ".css", ".js", ".txt", ""];

    [Fact]
    public void No_file_holds_a_merge_conflict_marker()
    {
        var root = Root();
        var files = Folders.Select(f => Path.Combine(root, f)).Where(Directory.Exists)
            .SelectMany(f => Directory.EnumerateFiles(f, "*", SearchOption.AllDirectories))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && Extensions.Contains(Path.GetExtension(f)))
            .Append(Path.Combine(root, "README.md"))
            .ToList();
        Assert.True(files.Count > 100, $"only {files.Count} files found under {root}");
        var marked = files.SelectMany(f => File.ReadLines(f).Select((line, i) => (f, line, i)))
            .Where(x => x.line.StartsWith("<<<<<<< ", StringComparison.Ordinal) || x.line.StartsWith(">>>>>>> ", StringComparison.Ordinal))
            .Select(x => $"{Path.GetRelativePath(root, x.f)}:{x.i + 1}")
            .ToList();
        Assert.True(marked.Count == 0, "merge conflict markers at " + string.Join(", ", marked));
    }

    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "README.md")) && Directory.Exists(Path.Combine(dir.FullName, "src"))) return dir.FullName;
        }
        throw new InvalidOperationException("The repository root was not found above " + AppContext.BaseDirectory);
    }
}
