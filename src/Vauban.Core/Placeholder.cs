namespace Vauban; public static class Placeholder { }
